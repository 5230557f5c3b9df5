/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * acl: Istio AuthorizationPolicy for weft. Policies come from weft's
 * top-level `acl:` settings and from security.istio.io AuthorizationPolicy
 * documents (weft-acl-config.c); the ACCESS hook evaluates the ones that
 * apply to this sidecar (weft-acl-eval.c) and answers a denial with 403
 * and x-weft-error: rbac-denied.
 *
 * Metric series are resolved at config time and log lines are formatted
 * into weft_log's stack buffer, so the hook allocates nothing.
 */
#include "weft-acl-private.h"

#include <string.h>

static const char weft_acl_denied_body[] = "403 Forbidden: rbac-denied\n";

typedef struct {
  WeftAclConfig    *config;
  WeftMetric       *denied_metric;
  WeftMetric       *audit_metric;
  WeftMetricSeries *not_allowed[2];   /* by dry_run: "false", "true" */
} WeftAcl;

typedef struct {
  WeftAcl  *acl;
  gboolean  dry_run;
} WeftAclInstance;

/* what the sink needs to log a request */
typedef struct {
  WeftRequest           *req;
  const WeftPolicyInput *in;
  const WeftAcl         *acl;
} WeftAclEvent;

/* ------------------------------------------------------------------ */
/* control side                                                         */
/* ------------------------------------------------------------------ */

static void
weft_acl_free (gpointer data)
{
  WeftAcl *acl = data;

  weft_acl_config_free (acl->config);
  g_free (acl);
}

static const char *
weft_acl_node_field (gpointer data, const char *field)
{
  return weft_plugin_context_get_node_field (data, field);
}

static void
weft_acl_register_metrics (WeftAcl *acl, WeftPluginContext *ctx)
{
  static const char *const policy_dry_run[] = { "policy", "dry_run", NULL };
  static const char *const dry_run[] = { "dry_run", NULL };
  static const char *const policy[] = { "policy", NULL };
  static const char *const no[] = { "false", NULL };
  static const char *const yes[] = { "true", NULL };
  WeftMetric *not_allowed;

  acl->denied_metric = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_acl_denied_total",
      "Requests a DENY AuthorizationPolicy matched; dry_run=\"true\" counts the ones let through.",
      policy_dry_run, NULL, 0);
  not_allowed = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_acl_not_allowed_total",
      "Requests no ALLOW AuthorizationPolicy matched while some applied; dry_run=\"true\" counts "
      "the ones let through.", dry_run, NULL, 0);
  acl->audit_metric = weft_plugin_context_register_metric (ctx, WEFT_METRIC_COUNTER,
      "weft_acl_audit_total", "Requests an AUDIT AuthorizationPolicy matched.", policy, NULL, 0);
  acl->not_allowed[0] = weft_metric_get_series (not_allowed, no);
  acl->not_allowed[1] = weft_metric_get_series (not_allowed, yes);
}

static gpointer
weft_acl_config_new_cb (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  WeftAcl *acl = g_new0 (WeftAcl, 1);

  acl->config = weft_acl_config_new (weft_acl_node_field, ctx);
  if (!weft_acl_config_parse_settings (acl->config, node, error))
    {
      weft_acl_free (acl);
      return NULL;
    }
  weft_acl_register_metrics (acl, ctx);
  return acl;
}

static gboolean
weft_acl_add_document (gpointer data, const WeftNode *doc, GError **error)
{
  WeftAcl *acl = data;

  return weft_acl_config_add_document (acl->config, doc, error);
}

static void
weft_acl_resolve_series (WeftAcl *acl, WeftAclPolicy *p)
{
  const char *denied[] = { p->name, "false", NULL };
  const char *would[] = { p->name, "true", NULL };
  const char *audit[] = { p->name, NULL };

  if (p->action == WEFT_ACL_DENY)
    {
      p->denied = weft_metric_get_series (acl->denied_metric, denied);
      p->would_deny = weft_metric_get_series (acl->denied_metric, would);
    }
  else if (p->action == WEFT_ACL_AUDIT)
    p->audited = weft_metric_get_series (acl->audit_metric, audit);
}

static gboolean
weft_acl_finish (gpointer data, GError **error)
{
  WeftAcl *acl = data;
  WeftAclConfig *config = acl->config;

  if (!weft_acl_config_finish (config, error))
    return FALSE;
  for (guint i = 0; i < config->policies->len; i++)
    {
      WeftAclPolicy *p = config->policies->pdata[i];
      if (p->skipped == NULL)
        weft_acl_resolve_series (acl, p);
    }
  weft_log (WEFT_LOG_INFO, WEFT_ACL_LOG_DOMAIN,
            "%u of %u policies apply: %u DENY, %u ALLOW (%u in dry run), %u AUDIT; dry run %s",
            config->n_deny + config->n_allow + config->n_audit, config->policies->len,
            config->n_deny, config->n_allow, config->n_allow - config->n_allow_enforced,
            config->n_audit, config->dry_run ? "on" : "off");
  return TRUE;
}

static gpointer
weft_acl_instance_new (gpointer data, const WeftListenerInfo *listener, const WeftNode *node,
                       GError **error)
{
  static const char *const keys[] = { "dry_run", NULL };
  WeftAcl *acl = data;
  gboolean dry_run = acl->config->dry_run;
  const WeftNode *value = node != NULL ? weft_node_lookup (node, "dry_run") : NULL;
  WeftAclInstance *inst;

  if (!weft_node_is_null (node) && !weft_node_check_keys (node, keys, error))
    return NULL;
  if (!weft_node_is_null (value) && !weft_node_get_boolean (value, &dry_run, error))
    return NULL;
  inst = g_new0 (WeftAclInstance, 1);
  inst->acl = acl;
  inst->dry_run = dry_run;
  return inst;
}

/* ------------------------------------------------------------------ */
/* data path                                                            */
/* ------------------------------------------------------------------ */

static void
weft_acl_series_add (WeftMetricSeries *series)
{
  if (series != NULL)
    weft_metric_series_add (series, 1);
}

/* a flood of denials must not become a flood of writes on the worker:
 * at most WEFT_ACL_LOG_PER_SEC lines a second per thread, then a count */
#define WEFT_ACL_LOG_PER_SEC 20

static gboolean
weft_acl_log_allowed (void)
{
  static __thread WeftLogLimit limit;
  guint held_back;
  gboolean ok = weft_log_limit_allow (&limit, WEFT_ACL_LOG_PER_SEC, 1, &held_back);

  if (held_back > 0)
    weft_log (WEFT_LOG_INFO, WEFT_ACL_LOG_DOMAIN,
              "%u more decision lines suppressed (over %u a second)", held_back,
              WEFT_ACL_LOG_PER_SEC);
  return ok;
}

/* one line: what was asked, by whom, and which policy and rule decided */
static void
weft_acl_log (const WeftAclEvent *ev, const char *what, const WeftAclPolicy *p,
              const WeftAclRule *rule)
{
  const WeftPolicyInput *in = ev->in;
  const char *path, *ip, *principal;
  const WeftAclPolicy *sole;
  int path_len;

  /* a suppressed line costs nothing more */
  if (!weft_acl_log_allowed ())
    return;
  path = in->path != NULL ? in->path : "";
  path_len = (int) MIN (strcspn (path, "?#"), 1024u);
  ip = weft_request_get_peer_ip (ev->req);
  principal = in->principal != NULL ? in->principal : "-";
  sole = p == NULL ? weft_acl_sole_allow (ev->acl->config) : NULL;
  if (p != NULL)
    weft_log (WEFT_LOG_INFO, WEFT_ACL_LOG_DOMAIN,
              "%s %s %.*s from %s principal %s: policy '%s' rule '%s'", what,
              in->method ? in->method : "-", path_len, path, ip ? ip : "-", principal, p->name,
              rule != NULL ? rule->name : "-");
  else if (sole != NULL)
    weft_log (WEFT_LOG_INFO, WEFT_ACL_LOG_DOMAIN,
              "%s %s %.*s from %s principal %s: policy '%s' (ALLOW) has no matching rule", what,
              in->method ? in->method : "-", path_len, path, ip ? ip : "-", principal,
              sole->name);
  else
    weft_log (WEFT_LOG_INFO, WEFT_ACL_LOG_DOMAIN,
              "%s %s %.*s from %s principal %s: no ALLOW policy matched (%u apply)", what,
              in->method ? in->method : "-", path_len, path, ip ? ip : "-", principal,
              ev->acl->config->n_allow);
}

static void
weft_acl_on_audit (gpointer data, const WeftAclPolicy *p, const WeftAclRule *rule)
{
  weft_acl_series_add (p->audited);
  weft_acl_log (data, "audit", p, rule);
}

static void
weft_acl_on_would_deny (gpointer data, const WeftAclPolicy *p, const WeftAclRule *rule)
{
  const WeftAclEvent *ev = data;

  weft_acl_series_add (p != NULL ? p->would_deny : ev->acl->not_allowed[1]);
  weft_acl_log (ev, "would deny (dry run)", p, rule);
}

static const WeftAclSink weft_acl_sink = {
  .audit = weft_acl_on_audit,
  .would_deny = weft_acl_on_would_deny,
};

static WeftHookResult
weft_acl_deny (WeftRequest *req, const WeftAclEvent *ev, const WeftAclDecision *d)
{
  weft_acl_series_add (d->policy != NULL ? d->policy->denied : ev->acl->not_allowed[0]);
  weft_acl_log (ev, "denied", d->policy, d->rule);
  weft_request_set_error_reason (req, "rbac-denied");
  weft_request_add_response_flags (req, WEFT_RESPONSE_FLAG_UNAUTHORIZED);
  weft_request_respond (req, 403, "text/plain", weft_acl_denied_body,
                        sizeof weft_acl_denied_body - 1);
  return WEFT_HOOK_RESPOND;
}

static WeftHookResult
weft_acl_access (WeftRequest *req, gpointer data, gpointer worker_data)
{
  WeftAclInstance *inst = data;
  WeftPolicyInput in;
  WeftAclDecision d;
  WeftAclEvent ev;

  weft_policy_input_init (&in, req);
  ev = (WeftAclEvent) { req, &in, inst->acl };
  weft_acl_evaluate (inst->acl->config, &in, &weft_acl_sink, &ev, &d);
  if (d.verdict == WEFT_ACL_VERDICT_ALLOW)
    return WEFT_HOOK_CONTINUE;
  if (inst->dry_run)
    {
      weft_acl_on_would_deny (&ev, d.policy, d.rule);
      return WEFT_HOOK_CONTINUE;
    }
  return weft_acl_deny (req, &ev, &d);
}

static const char *const weft_acl_kinds[] = {
  "security.istio.io/v1/AuthorizationPolicy",
  "security.istio.io/v1beta1/AuthorizationPolicy",
  NULL,
};

static const WeftPluginDescriptor weft_acl_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "acl",
  .version = "0.1.0",
  .description = "access control: weft acl policies and Istio AuthorizationPolicy",
  .document_kinds = weft_acl_kinds,
  .config_new = weft_acl_config_new_cb,
  .config_add_document = weft_acl_add_document,
  .config_finish = weft_acl_finish,
  .config_free = weft_acl_free,
  .instance_new = weft_acl_instance_new,
  .instance_free = g_free,
  .hooks = {
    [WEFT_PHASE_ACCESS] = weft_acl_access,
  },
};

WEFT_PLUGIN_DEFINE (weft_acl_descriptor)
