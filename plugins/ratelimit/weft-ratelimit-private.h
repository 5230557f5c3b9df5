/* weft-ratelimit-private.h: the ratelimit plugin's compiled configuration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <sys/socket.h>
#include <weft/plugin.h>

#include "weft-policy-private.h"
#include "weft-rate-table-private.h"

G_BEGIN_DECLS

typedef enum {
  WEFT_RATE_KEY_NONE,        /* one bucket for the sidecar */
  WEFT_RATE_KEY_PRINCIPAL,
  WEFT_RATE_KEY_SOURCE_IP,
  WEFT_RATE_KEY_HEADER,
  WEFT_RATE_KEY_ROUTE,
} WeftRateKeyKind;

/**
 * WeftRateLimit:
 *
 * One `ratelimit.limits[]` entry: which requests count (listeners, routes,
 * an Istio rule), how they are keyed, and the bucket: @burst tokens,
 * refilled one per @interval_us.
 */
typedef struct {
  char            *name;
  guint64          count;        /* the rate as written: @count per @period_s */
  guint64          period_s;
  guint64          interval_us;
  guint            burst;
  WeftRateKeyKind  key;
  char            *header;       /* WEFT_RATE_KEY_HEADER: lowercase name */
  guint            max_keys;
  gboolean         global;       /* counted in Redis, shared by every sidecar */
  GStrv            listeners;    /* NULL = every listener running the plugin */
  GStrv            routes;       /* NULL = every route */
  WeftPolicyRule  *match;        /* NULL = every request */
  WeftRateTable   *table;        /* local limits */
  char            *policy_header;   /* RateLimit-Policy value */
  char            *redis_key;    /* global: "prefix:name:" */
  WeftMetricSeries *admitted;
  WeftMetricSeries *limited;
  WeftMetricSeries *failed_open;
  WeftMetricSeries *failed_closed;
  WeftMetricSeries *overflow;
} WeftRateLimit;

typedef struct {
  GPtrArray       *limits;        /* WeftRateLimit */
  gboolean         has_redis;
  struct sockaddr_storage redis_addr;
  socklen_t        redis_addr_len;
  char            *redis_address;
  guint64          redis_timeout_ms;
  gboolean         fail_open;
  char            *key_prefix;
  guint            slot;
} WeftRateConfig;

WeftRateConfig *weft_rate_config_new  (WeftPluginContext *ctx, const WeftNode *node,
                                       GError **error);
/* the settings alone, with no metrics or buckets yet (unit tests) */
WeftRateConfig *weft_rate_config_parse (const WeftNode *node, GError **error);
void            weft_rate_config_free (WeftRateConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftRateConfig, weft_rate_config_free)

/* "10/s", "600/m", "5/2s": @count per @period_s */
gboolean        weft_rate_parse       (const char *text, guint64 *count, guint64 *period_s);

G_END_DECLS
