/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftWorker: one thread with its own GMainContext, one epoll source for
 * all its fds, its own SO_REUSEPORT listener sockets, buffer pool, upstream
 * keep-alive pool and counters. The main thread talks to it only through
 * g_main_context_invoke().
 */
#pragma once

#include <weft/plugin.h>
#include "weft-buf-pool-private.h"
#include "weft-pipe-pool-private.h"
#include "weft-epoll-source-private.h"
#include "weft-generation-private.h"
#include "weft-upstream-pool-private.h"
#include "weft-tls-session-private.h"

G_BEGIN_DECLS

typedef struct _WeftWorker WeftWorker;
typedef struct _WeftConn WeftConn;

/* the core's own metric series, resolved once at startup */
typedef enum {
  WEFT_UPSTREAM_ERR_CONNECT_REFUSED,
  WEFT_UPSTREAM_ERR_CONNECT_FAILED,
  WEFT_UPSTREAM_ERR_CONNECT_TIMEOUT,
  WEFT_UPSTREAM_ERR_RESET,
  WEFT_UPSTREAM_ERR_TIMEOUT,
  WEFT_UPSTREAM_ERR_NO_ENDPOINT,
  WEFT_UPSTREAM_ERR_NO_UPSTREAM,
  WEFT_UPSTREAM_ERR_BAD_RESPONSE,
  WEFT_UPSTREAM_ERR_RETRIED,
  WEFT_UPSTREAM_ERR_OVERFLOW,
  WEFT_UPSTREAM_ERR_RETRY_BUDGET,
  WEFT_UPSTREAM_ERR_TLS,
  WEFT_UPSTREAM_ERR_UNRESOLVED,
  WEFT_UPSTREAM_ERR_RESPONSE_IDLE,
  WEFT_UPSTREAM_ERR_COUNT,
} WeftUpstreamErr;

/* the x-weft-error token and metric label of @err */
const char *weft_upstream_err_token (WeftUpstreamErr err);

typedef struct {
  WeftMetric       *conns_active;     /* {listener} */
  WeftMetric       *conns_total;      /* {listener} */
  WeftMetric       *requests_total;   /* {listener, code} */
  WeftMetricSeries *upstream_errors[WEFT_UPSTREAM_ERR_COUNT];
  WeftMetricSeries *bad_requests;
  WeftMetric       *tls_handshakes;   /* {listener, role, resumed} */
  WeftMetric       *tls_failures;     /* {listener, role, reason} */
  WeftMetric       *listener_overflow;     /* {listener} */
  WeftMetric       *listener_fd_exhausted; /* {listener} */
} WeftCoreMetrics;

/* one listener's state shared by its sockets on all workers (an atomic
 * refcounted box: the server and each worker hold a reference); every
 * field is atomic */
typedef struct {
  gint n_conns;          /* client connections open, all workers */
  gint max_conns;        /* listeners[].max_connections; 0 = no limit */
  gint overflow_log_s;   /* second of the last "full" log line */
  gint overflow_quiet;   /* refusals since that line */
  gint fd_log_s;         /* likewise for running out of fds */
  gint fd_quiet;
} WeftListenerShared;

/* a new box (the caller's reference): nothing open, no limit */
WeftListenerShared *weft_listener_shared_new (void);
void                weft_listener_shared_unref (WeftListenerShared *shared);

/* which side of a TLS handshake weft was on */
typedef enum {
  WEFT_TLS_ROLE_SERVER,   /* an inbound client connected to us */
  WEFT_TLS_ROLE_CLIENT,   /* we connected to an upstream */
} WeftTlsRole;

/* one listener socket of one worker */
typedef struct {
  WeftEpollHandler  h;
  WeftWorker       *worker;
  guint             id;
  char             *name;
  WeftMetricSeries *conns_active;
  WeftMetricSeries *conns_total;
  WeftMetricSeries *requests[6];      /* by status class: 1xx..5xx, [0] other */
  WeftMetricSeries *spliced[2];       /* body bytes spliced: [0] request, [1] response */
  WeftMetricSeries *tls_ok[2][2];     /* [role][resumed], resolved at first use */
  WeftMetricSeries *tls_failed[2][WEFT_TLS_FAIL_COUNT]; /* [role][failure], likewise */
  WeftMetricSeries *overflow;         /* closed at once: max_connections reached */
  WeftMetricSeries *fd_exhausted;     /* accept paused: no fd left */
  WeftListenerShared *shared;
  gint64            resume_ms;        /* out of fds: not polled until then; 0 = polled */
  gboolean          closed;
} WeftWorkerListener;

struct _WeftWorker {
  guint              index;
  GThread           *thread;
  GMainContext      *context;
  GMainLoop         *loop;
  WeftEpollSource   *epoll;
  WeftBufPool       *bufs;
  WeftPipePool      *pipes;         /* for splice(2) of bodies */
  WeftUpstreamPool  *pool;
  WeftGeneration    *gen;           /* new requests use this */
  GPtrArray         *retiring;      /* older generations with requests in flight */
  GPtrArray         *listeners;     /* WeftWorkerListener* */
  WeftConn          *conns;         /* every client connection (intrusive list) */
  WeftConn          *dead;          /* closed this batch, freed after it */
  struct _WeftMirror *mirrors;      /* request copies in flight */
  struct _WeftMirror *dead_mirrors; /* closed this batch, freed after it */
  gint               n_conns;       /* atomic: read by the main thread */
  gint64             now_ms;        /* monotonic, refreshed per batch */
  gint64             now_us;
  gint64             wall_offset_us; /* wall clock minus monotonic, per batch */
  guint64            rng[2];
  gboolean           draining;
  gboolean           in_loop;       /* the thread runs the loop now */
  gsize              released;      /* bytes freed since the last trim */
  GSource           *tick;
  WeftCoreMetrics   *metrics;
  WeftHttpHead       scratch_head;  /* the parser's output, reused */
  GMainContext      *main_context;
};

WeftWorker *weft_worker_new     (guint index, WeftCoreMetrics *metrics,
                                 GMainContext *main_context);
void        weft_worker_start   (WeftWorker *worker);
/* asks the thread to stop and joins it (after a drain) */
void        weft_worker_stop    (WeftWorker *worker);
void        weft_worker_free    (WeftWorker *worker);

/* main thread -> worker, asynchronous: */
/* the worker adopts @gen (the worker takes the ref) */
void        weft_worker_post_generation (WeftWorker *worker, WeftGeneration *gen);
/* the worker starts accepting on @fd (takes ownership) as listener @id,
 * counting its connections in @shared (takes a reference) */
void        weft_worker_post_listener_add (WeftWorker *worker, guint id, const char *name,
                                           int fd, WeftListenerShared *shared);
/* the worker closes its socket of listener @id; its connections drain */
void        weft_worker_post_listener_remove (WeftWorker *worker, guint id);
/* stop accepting everywhere, close idle connections, finish the rest */
void        weft_worker_post_drain (WeftWorker *worker);
gint        weft_worker_get_n_conns (WeftWorker *worker);

/* worker-thread side, used by connections */
WeftWorker *weft_worker_get_current (void);
void        weft_worker_conn_added   (WeftWorker *worker, WeftConn *conn);
void        weft_worker_conn_removed (WeftWorker *worker, WeftConn *conn);
/* a request of @gen ended: a retired generation may now be released */
void        weft_worker_gen_released (WeftWorker *worker, WeftGeneration *gen);
void        weft_worker_random_id    (WeftWorker *worker, char out[37]);
/* counts a TLS handshake on @wl: @failure NONE for a success */
void        weft_worker_listener_count_tls (WeftWorkerListener *wl, WeftTlsRole role,
                                            gboolean resumed, WeftTlsFailure failure);
/* counts @n body bytes spliced on @wl, of a request or of a response */
void        weft_worker_listener_count_spliced (WeftWorkerListener *wl, gboolean response,
                                                gsize n);
guint64     weft_worker_random       (WeftWorker *worker);
/* a timer callback brackets its work with these, as an epoll batch is */
void        weft_worker_begin_batch  (WeftWorker *worker);
void        weft_worker_end_batch    (WeftWorker *worker);

G_END_DECLS
