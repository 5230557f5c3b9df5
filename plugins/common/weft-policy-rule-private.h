/* weft-policy-rule-private.h: the compiled form of a WeftPolicyRule, shared
 * by the parser (weft-policy-parse.c) and the matcher (weft-policy.c).
 * Nothing outside plugins/common includes it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "weft-policy-private.h"

G_BEGIN_DECLS

/* an empty list (n == 0) is no constraint, as an absent one; each pattern's
 * length and whether it is a path template are worked out once, at parse */
typedef struct {
  char     **v;
  gsize     *len;
  gboolean  *tmpl;
  guint      n;
} WeftPolicyStrList;

/* appends @text to @l, which has room (see weft_policy_strs_alloc) */
void weft_policy_strs_alloc (WeftPolicyStrList *l, guint n);
void weft_policy_strs_push  (WeftPolicyStrList *l, const char *text);

typedef struct {
  WeftPolicyCidr *v;
  guint           n;
} WeftPolicyCidrList;

typedef struct {
  guint16 *v;
  guint    n;
} WeftPolicyPortList;

typedef struct {
  WeftPolicyStrList  principals, not_principals, namespaces, not_namespaces;
  /* remoteIpBlocks: the same address, weft trusts no proxy hops */
  WeftPolicyCidrList ip_blocks, not_ip_blocks, remote_ip_blocks, not_remote_ip_blocks;
} WeftPolicySource;

typedef struct {
  WeftPolicyStrList  hosts, not_hosts, methods, not_methods, paths, not_paths;
  WeftPolicyPortList ports, not_ports;
} WeftPolicyOperation;

typedef enum {
  WEFT_POLICY_KEY_HEADER,
  WEFT_POLICY_KEY_SOURCE_IP,
  WEFT_POLICY_KEY_REMOTE_IP,
  WEFT_POLICY_KEY_SOURCE_NAMESPACE,
  WEFT_POLICY_KEY_SOURCE_PRINCIPAL,
  WEFT_POLICY_KEY_DESTINATION_PORT,
  WEFT_POLICY_KEY_CONNECTION_SNI,
} WeftPolicyKey;

typedef struct {
  WeftPolicyKey      key;
  char              *header;          /* lowercase, for request.headers[...] */
  WeftPolicyStrList  values, not_values;
  WeftPolicyCidrList cidrs, not_cidrs;
  WeftPolicyPortList ports, not_ports;
} WeftPolicyCondition;

struct _WeftPolicyRule {
  WeftPolicySource    *from;
  guint                n_from;
  WeftPolicyOperation *to;
  guint                n_to;
  WeftPolicyCondition *when;
  guint                n_when;
};

G_END_DECLS
