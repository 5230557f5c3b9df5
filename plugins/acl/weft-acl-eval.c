/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Istio's evaluation order over the policies that apply here: AUDIT
 * policies are reported, DENY policies decide first, then ALLOW policies
 * (none applying = allowed). Runs on workers: no allocation, no lock.
 */
#include "weft-acl-private.h"

/* the first rule of @p that matches, or NULL */
static const WeftAclRule *
weft_acl_policy_match (const WeftAclPolicy *p, const WeftPolicyInput *in)
{
  for (guint i = 0; i < p->n_rules; i++)
    if (weft_policy_rule_match (p->rules[i].match, in))
      return &p->rules[i];
  return NULL;
}

static void
weft_acl_audit (const WeftAclConfig *config, const WeftPolicyInput *in, const WeftAclSink *sink,
                gpointer data)
{
  for (guint i = 0; i < config->n_audit; i++)
    {
      const WeftAclRule *rule = weft_acl_policy_match (config->audit[i], in);
      if (rule != NULL && sink != NULL && sink->audit != NULL)
        sink->audit (data, config->audit[i], rule);
    }
}

/* the first enforced DENY match; dry-run matches are reported and passed */
static gboolean
weft_acl_deny (const WeftAclConfig *config, const WeftPolicyInput *in, const WeftAclSink *sink,
               gpointer data, WeftAclDecision *out)
{
  for (guint i = 0; i < config->n_deny; i++)
    {
      const WeftAclPolicy *p = config->deny[i];
      const WeftAclRule *rule = weft_acl_policy_match (p, in);

      if (rule == NULL)
        continue;
      if (!p->dry_run)
        {
          *out = (WeftAclDecision) { WEFT_ACL_VERDICT_DENY, p, rule };
          return TRUE;
        }
      if (sink != NULL && sink->would_deny != NULL)
        sink->would_deny (data, p, rule);
    }
  return FALSE;
}

/* the real verdict counts only enforced ALLOW policies; the dry-run one
 * asks what would happen if the dry-run ones were enforced too */
static void
weft_acl_allow (const WeftAclConfig *config, const WeftPolicyInput *in, const WeftAclSink *sink,
                gpointer data, WeftAclDecision *out)
{
  gboolean any = FALSE, enforced = FALSE;

  for (guint i = 0; i < config->n_allow && !enforced; i++)
    {
      const WeftAclPolicy *p = config->allow[i];
      if ((any && p->dry_run) || weft_acl_policy_match (p, in) == NULL)
        continue;
      any = TRUE;
      enforced = !p->dry_run;
    }
  if (config->n_allow_enforced > 0 && !enforced)
    *out = (WeftAclDecision) { WEFT_ACL_VERDICT_DENY, NULL, NULL };
  else if (config->n_allow > 0 && !any && sink != NULL && sink->would_deny != NULL)
    sink->would_deny (data, NULL, NULL);
}

void
weft_acl_evaluate (const WeftAclConfig *config, const WeftPolicyInput *in,
                   const WeftAclSink *sink, gpointer data, WeftAclDecision *out)
{
  *out = (WeftAclDecision) { WEFT_ACL_VERDICT_ALLOW, NULL, NULL };
  weft_acl_audit (config, in, sink, data);
  if (weft_acl_deny (config, in, sink, data, out))
    return;
  weft_acl_allow (config, in, sink, data, out);
}

const WeftAclPolicy *
weft_acl_sole_allow (const WeftAclConfig *config)
{
  const WeftAclPolicy *sole = NULL;

  if (config->n_allow_enforced != 1)
    return NULL;
  for (guint i = 0; i < config->n_allow; i++)
    if (!config->allow[i]->dry_run)
      sole = config->allow[i];
  return sole;
}
