/* weft-acl-private.h: the acl plugin's policies, compiled for one
 * configuration generation, and their evaluation.
 *
 * weft-acl-config.c parses weft's `acl:` settings and Istio
 * AuthorizationPolicy documents into #WeftAclPolicy objects and, at
 * finish, keeps the ones that apply to this sidecar in three flat arrays
 * (DENY, ALLOW, AUDIT). weft-acl-eval.c walks them per request without
 * allocating. weft-acl-plugin.c is the descriptor, the metrics, the logs
 * and the ACCESS hook.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "weft-policy-private.h"

G_BEGIN_DECLS

#define WEFT_ACL_LOG_DOMAIN "acl"

typedef enum {
  WEFT_ACL_ALLOW,
  WEFT_ACL_DENY,
  WEFT_ACL_AUDIT,
} WeftAclAction;

typedef struct {
  char           *name;        /* the weft rule's name, else "rules[N]" */
  WeftPolicyRule *match;
} WeftAclRule;

typedef struct {
  char             *name;       /* "<namespace>/<name>", or the weft policy's name */
  char             *ns;         /* metadata.namespace; NULL = every namespace */
  char             *where;      /* file:line:col of the policy */
  WeftAclAction     action;
  gboolean          dry_run;    /* istio.io/dry-run, or weft's per-policy dry_run */
  char            **selector;   /* matchLabels as key, value, key, value, ..., NULL */
  WeftAclRule      *rules;
  guint             n_rules;
  char             *skipped;    /* why it does not apply here; NULL when it does */
  /* resolved by the plugin at finish (NULL in unit tests) */
  WeftMetricSeries *denied;     /* dry_run="false" */
  WeftMetricSeries *would_deny; /* dry_run="true" */
  WeftMetricSeries *audited;
} WeftAclPolicy;

/* a field of this sidecar's node: "namespace", "label.<key>"; NULL = unset */
typedef const char *(*WeftAclNodeFunc) (gpointer data, const char *field);

typedef struct {
  gboolean         dry_run;          /* acl.dry_run: the default of every listener */
  char            *root_namespace;   /* default "istio-system" */
  WeftAclNodeFunc  node_field;
  gpointer         node_data;
  GPtrArray       *policies;         /* WeftAclPolicy*, owned, in input order */
  GHashTable      *names;            /* name -> WeftAclPolicy*, for duplicates */
  /* the policies that apply here, by action; filled by finish */
  WeftAclPolicy  **deny, **allow, **audit;
  guint            n_deny, n_allow, n_audit;
  guint            n_allow_enforced; /* ALLOW policies not in dry run */
} WeftAclConfig;

WeftAclConfig *weft_acl_config_new            (WeftAclNodeFunc node_field, gpointer node_data);
void           weft_acl_config_free           (WeftAclConfig *config);
/* the top-level `acl:` mapping; @node may be NULL */
gboolean       weft_acl_config_parse_settings (WeftAclConfig *config, const WeftNode *node,
                                               GError **error);
/* one security.istio.io AuthorizationPolicy document */
gboolean       weft_acl_config_add_document   (WeftAclConfig *config, const WeftNode *doc,
                                               GError **error);
/* decides which policies apply to this sidecar and fills the arrays */
gboolean       weft_acl_config_finish         (WeftAclConfig *config, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftAclConfig, weft_acl_config_free)

/**
 * WeftAclSink:
 * @audit: an AUDIT policy's rule matched
 * @would_deny: a DENY policy in dry run matched (@policy, @rule), or, with
 *   @policy NULL, the request would be denied if the ALLOW policies in dry
 *   run were enforced
 *
 * What the evaluation reports besides its verdict. Called on the worker;
 * must not allocate.
 */
typedef struct {
  void (*audit)      (gpointer data, const WeftAclPolicy *policy, const WeftAclRule *rule);
  void (*would_deny) (gpointer data, const WeftAclPolicy *policy, const WeftAclRule *rule);
} WeftAclSink;

typedef enum {
  WEFT_ACL_VERDICT_ALLOW,
  WEFT_ACL_VERDICT_DENY,
} WeftAclVerdict;

/* a DENY verdict names the DENY policy and rule that matched, or has
 * @policy NULL when ALLOW policies apply and none matched */
typedef struct {
  WeftAclVerdict       verdict;
  const WeftAclPolicy *policy;
  const WeftAclRule   *rule;
} WeftAclDecision;

void                 weft_acl_evaluate   (const WeftAclConfig *config, const WeftPolicyInput *in,
                                          const WeftAclSink *sink, gpointer data,
                                          WeftAclDecision *out);
/* the only enforced ALLOW policy, or NULL when there are none or several */
const WeftAclPolicy *weft_acl_sole_allow (const WeftAclConfig *config);

G_END_DECLS
