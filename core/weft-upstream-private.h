/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftUpstream: a named cluster of endpoints, with round robin over healthy
 * endpoints. Endpoint sets are immutable; the main thread swaps in a new set
 * when DNS answers change, and keeps old ones until the upstream is freed,
 * so a worker never sees freed memory. Health is kept per worker.
 */
#pragma once

#include <weft/plugin.h>
#include <gio/gio.h>
#include <sys/socket.h>
#include "weft-config-private.h"

G_BEGIN_DECLS

typedef struct {
  struct sockaddr_storage addr;
  socklen_t               addr_len;
  char                   *key;        /* "ip:port", the keep-alive pool key */
} WeftEndpoint;

typedef struct {
  guint   fails;          /* consecutive connect failures */
  gint64  retry_at_ms;    /* unhealthy until then (monotonic ms); 0 = healthy */
  guint64 backoff_ms;
} WeftEndpointHealth;

typedef struct {
  guint               n;
  WeftEndpoint       *endpoints;
  WeftEndpointHealth *health;     /* n_workers * n */
  guint               n_workers;
} WeftEndpointSet;

struct _WeftUpstream {
  char               *name;
  WeftUpstreamConfig *config;
  WeftEndpointSet    *set;        /* atomic; swapped by the main thread */
  GPtrArray          *retired;    /* older sets, freed with the upstream */
  guint              *rr;         /* per worker, spaced a cache line apart */
  guint               n_workers;
  gboolean            needs_dns;
  gboolean            resolving;
  guint               n_pending;  /* DNS lookups outstanding */
  GPtrArray          *pending;    /* WeftEndpoint arrays collected this round */
  guint               timer_id;
  GCancellable       *cancel;

  /* traffic policy */
  WeftLbSpec          lb;
  char               *hash_key;   /* lb.hash_key points here */
  WeftOutlierSpec     outlier;
  WeftPoolSpec        pool;
  guint              *inflight;   /* per worker, spaced like rr */
};

typedef enum {
  WEFT_PICK_OK,
  WEFT_PICK_NONE,          /* the set is empty */
} WeftPickResult;

/* how one attempt on an endpoint ended, for outlier detection and latency */
typedef enum {
  WEFT_OUTCOME_RESPONSE,        /* a response head arrived: see @status */
  WEFT_OUTCOME_CONNECT_FAILED,  /* refused, unreachable or timed out */
  WEFT_OUTCOME_RESET,           /* broke before a response head */
  WEFT_OUTCOME_TIMEOUT,         /* no response head in time */
  WEFT_OUTCOME_CANCELLED,       /* the client left or a retry gave up: no verdict */
} WeftOutcome;

/* what a pick may take into account */
typedef struct {
  gboolean         has_hash;
  guint64          hash;        /* consistent-hash policies: the request's key */
  WeftEndpointSet *avoid_set;   /* a retry avoids the endpoint that failed, */
  guint            avoid_idx;   /* when another one is usable */
} WeftPickHints;

WeftUpstream    *weft_upstream_new     (WeftUpstreamConfig *config, guint n_workers,
                                        WeftUpstream *previous);
void             weft_upstream_free    (WeftUpstream *upstream);
/* starts periodic DNS resolution on the calling (main) thread's context */
void             weft_upstream_start_dns (WeftUpstream *upstream);
void             weft_upstream_stop_dns  (WeftUpstream *upstream);

/* worker side: picks an endpoint index of @set for worker @w; *@all_down is
 * set when every endpoint was unhealthy and one is tried anyway.
 * @hints may be NULL. */
WeftPickResult   weft_upstream_pick    (WeftUpstream *upstream, guint w, gint64 now_ms,
                                        const WeftPickHints *hints,
                                        WeftEndpointSet **set, guint *idx,
                                        gboolean *all_down);
/* connect health: @ok FALSE after a failed connect */
void             weft_upstream_report  (WeftUpstream *upstream, WeftEndpointSet *set,
                                        guint idx, guint w, gboolean ok, gint64 now_ms);
/* the request's hash key for @upstream's policy; FALSE when it hashes on
 * nothing (not a hash policy, or the header/cookie is missing) */
gboolean         weft_upstream_request_hash (WeftUpstream *upstream, WeftRequest *req,
                                             guint64 *hash);
/* every attempt that picked an endpoint is started and ended exactly once */
void             weft_upstream_attempt_start (WeftUpstream *upstream, WeftEndpointSet *set,
                                              guint idx, guint w);
void             weft_upstream_attempt_end   (WeftUpstream *upstream, WeftEndpointSet *set,
                                              guint idx, guint w, WeftOutcome outcome,
                                              guint status, gint64 latency_us, gint64 now_ms);
/* TRUE when worker @w has pool.max_requests attempts in flight already */
gboolean         weft_upstream_overflowing (WeftUpstream *upstream, guint w);
/* the traffic policy (config time, main thread); NULL arguments keep theirs */
gboolean         weft_upstream_set_policy (WeftUpstream *upstream, const WeftLbSpec *lb,
                                           const WeftOutlierSpec *outlier,
                                           const WeftPoolSpec *pool, GError **error);
/* builds a set from addresses (tests, DNS) */
WeftEndpointSet *weft_endpoint_set_new (GPtrArray *addresses, guint16 port, guint n_workers);
void             weft_endpoint_set_free (WeftEndpointSet *set);
/* fills @ep from an IP literal; FALSE when @host is no IP */
gboolean         weft_endpoint_init    (WeftEndpoint *ep, const char *host, guint16 port);

G_END_DECLS
