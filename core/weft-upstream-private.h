/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftUpstream: a named cluster of endpoints and its traffic policy: the
 * load balancer (round robin, random, least request, ring hash, Maglev),
 * outlier detection and pool limits.
 *
 * Endpoint sets are immutable once published; the main thread builds a new
 * set (with its ring or Maglev table) when DNS answers or the policy change,
 * swaps it in atomically and keeps old ones until the upstream is freed, so
 * a worker never sees freed memory or a half-built table.
 *
 * Connect health and least-request state are kept per worker, each worker's
 * block on its own cache lines. Outlier detection state is shared by the
 * workers (g_atomic_*, and weft_shared_lock() around an ejection).
 */
#pragma once

#include <weft/plugin.h>
#include <gio/gio.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "weft-config-private.h"

G_BEGIN_DECLS

#define WEFT_CACHE_LINE 64

typedef struct {
  struct sockaddr_storage addr;
  socklen_t               addr_len;
  char                   *key;        /* "ip:port", the keep-alive pool key */
} WeftEndpoint;

/* per worker and endpoint: only that worker reads and writes it */
typedef struct {
  guint    fails;         /* consecutive connect failures */
  guint    outstanding;   /* attempts started and not ended (least request) */
  gint64   retry_at_ms;   /* unhealthy until then (monotonic ms); 0 = healthy */
  guint64  backoff_ms;
  double   rtt_us;        /* peak-EWMA latency, when has_rtt */
  gint64   rtt_at_ms;     /* when rtt_us was last updated */
  gboolean has_rtt;       /* FALSE until the first sample */
} WeftEndpointHealth;

/* per endpoint, shared by every worker: one cache line each */
typedef struct __attribute__ ((aligned (WEFT_CACHE_LINE))) {
  gint     consecutive_5xx;      /* atomic */
  gint     consecutive_gateway;  /* atomic */
  gint64   ejected_until_ms;     /* atomic on 64-bit hosts (see .c); 0 = not ejected */
  /* under weft_shared_lock () */
  guint    ejections;            /* how many times it was ejected (decays, see .c) */
  gint64   last_until_ms;        /* when the last ejection ended or ends */
} WeftEndpointOutlier;

/* one point of the consistent-hash ring */
typedef struct {
  guint64 hash;
  guint   idx;            /* endpoint index */
} WeftRingPoint;

typedef struct {
  guint               n;
  WeftEndpoint       *endpoints;
  WeftEndpointHealth *health;       /* n_workers blocks of health_stride entries */
  guint               health_stride;/* >= n; each worker's block starts on a cache line */
  guint               n_workers;
  WeftEndpointOutlier *outlier;     /* n, shared by the workers */

  /* the hash table of the policy the set was built for (main thread, before
   * the set is published; read-only afterwards) */
  WeftLbPolicy        table_policy; /* WEFT_LB_ROUND_ROBIN = no table */
  guint               table_size;   /* as asked: ring entries or Maglev size */
  WeftRingPoint      *ring;         /* sorted by hash */
  guint               n_ring;
  guint32            *maglev;       /* maglev_size endpoint indexes */
  guint               maglev_size;
} WeftEndpointSet;

/* worker @w's health entries of @set */
static inline WeftEndpointHealth *
weft_endpoint_set_health (WeftEndpointSet *set, guint w)
{
  return &set->health[(gsize) MIN (w, set->n_workers - 1) * set->health_stride];
}

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
  guint64            *rng;        /* per worker xorshift64* state, spaced like rr */
};

typedef enum {
  WEFT_PICK_OK,
  WEFT_PICK_NONE,          /* the set is empty */
  WEFT_PICK_UNRESOLVED,    /* empty because no DNS name resolved yet */
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
 * set when every endpoint was unhealthy or ejected and one is tried anyway.
 * @hints may be NULL; without has_hash the hash policies pick at random; the
 * avoided endpoint is picked only when no other one is usable. */
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
/* the connect timeout of @upstream: pool.connect_timeout_ms when a plugin set
 * one, else the upstream's timeouts.connect, else @global_ms */
guint64          weft_upstream_connect_ms (WeftUpstream *upstream, guint64 global_ms);
/* pool.max_requests_per_connection; 0 = no limit */
guint            weft_upstream_max_requests_per_connection (WeftUpstream *upstream);
/* main thread: publishes @set (taking it) as the upstream's endpoints, after
 * building its hash table and carrying outlier state over by endpoint key;
 * the old set is retired, not freed (DNS; tests) */
void             weft_upstream_replace_set (WeftUpstream *upstream, WeftEndpointSet *set);
/* main thread, before @set is published: builds the ring or Maglev table
 * @lb asks for (nothing for the other policies) */
void             weft_endpoint_set_build_table (WeftEndpointSet *set, const WeftLbSpec *lb);
/* 64-bit FNV-1a with a murmur3 fmix64 finaliser; @seed varies the function */
guint64          weft_hash64 (const void *data, gsize len, guint64 seed);
/* builds a set from addresses (tests, DNS) */
WeftEndpointSet *weft_endpoint_set_new (GPtrArray *addresses, guint16 port, guint n_workers);
void             weft_endpoint_set_free (WeftEndpointSet *set);
/* TRUE unless @ep came from a destination without a port (port 0) */
gboolean         weft_endpoint_has_port (const WeftEndpoint *ep);
/* @ep's socket address, with @port when @ep has none; returns the pool
 * key: ep->key, or "ip:port" written to @key_buf (may be NULL) */
const char      *weft_endpoint_address (const WeftEndpoint *ep, guint16 port,
                                        struct sockaddr_storage *addr,
                                        char *key_buf, gsize key_len);
/* fills @ep from an IP literal; FALSE when @host is no IP */
gboolean         weft_endpoint_init    (WeftEndpoint *ep, const char *host, guint16 port);

/* where @addr keeps its port (IPv4 or IPv6), else NULL */
in_port_t *weft_sockaddr_port (struct sockaddr_storage *addr);

G_END_DECLS
