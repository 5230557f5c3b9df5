/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftConn: a client connection and the exchange it carries: the request
 * head is parsed in place, the phases run, the upstream connection comes
 * from the worker's pool, and bodies stream through the two input buffers
 * with backpressure. After a 101 the connection becomes a byte tunnel.
 */
#pragma once

#include <netinet/in.h>
#include <arpa/inet.h>
#include "weft-request-private.h"
#include "weft-worker-private.h"

G_BEGIN_DECLS

/* where an mTLS-capable connection is before its first request */
typedef enum {
  WEFT_CONN_TLS_NONE,        /* plaintext (decided, or never TLS) */
  WEFT_CONN_TLS_PEEK,        /* waiting for the first byte: 0x16 starts a handshake */
  WEFT_CONN_TLS_HANDSHAKE,
  WEFT_CONN_TLS_READY,
} WeftConnTlsState;

/* how far a body has been validated and forwarded */
typedef struct {
  WeftHttpBodyKind   kind;
  guint64            remaining;   /* LENGTH: bytes not yet taken */
  guint64            total;       /* bytes taken so far */
  WeftChunkedDecoder dec;
  gsize              ready;       /* validated bytes at the front of the buffer, not yet sent */
  gboolean           done;        /* every byte of the body was taken */
  gboolean           strip;       /* CHUNKED: keep only the data (for an HTTP/1.0 client) */
} WeftFramer;

typedef enum {
  WEFT_DEADLINE_NONE,
  WEFT_DEADLINE_IDLE,
  WEFT_DEADLINE_HEADER,
  WEFT_DEADLINE_CONNECT,
  WEFT_DEADLINE_REQUEST,
  WEFT_DEADLINE_RESPONSE_IDLE,
  WEFT_DEADLINE_LINGER,
  WEFT_DEADLINE_DRAIN,
} WeftDeadline;

struct _WeftConn {
  WeftEpollHandler    h;            /* first: the epoll callback finds us by it */
  WeftWorker         *worker;
  WeftWorkerListener *wl;
  WeftConn           *prev;
  WeftConn           *next;
  struct sockaddr_storage peer;
  socklen_t           peer_len;
  char                peer_ip[INET6_ADDRSTRLEN];

  WeftBuf            *in;           /* bytes from the client */
  WeftBuf            *out;          /* heads and local bodies to the client */
  gboolean            readable;
  gboolean            writable;
  gboolean            client_eof;
  gboolean            closing;      /* close once out is flushed */
  gboolean            lingering;    /* flushed and shut down; discarding input */
  gboolean            dead;

  /* the exchange */
  gboolean            in_request;
  gboolean            keep_alive;   /* the client can take another request */
  WeftRequest         req;
  WeftFramer          req_body;
  WeftFramer          resp_body;
  WeftUpConn         *up;
  WeftBuf            *up_out;       /* the upstream request head, kept for a retry */
  gsize               up_out_sent;
  gboolean            up_eof;
  gboolean            resp_started; /* a byte of response arrived */
  gboolean            resp_head_done;
  gboolean            resp_head_sent;
  gsize               local_sent;
  gboolean            tunnel;
  gboolean            client_shut;  /* we shut down writing to the client */
  gboolean            up_shut;
  gboolean            retried;
  guint               connect_attempts;
  gboolean            all_down;
  WeftEndpointSet    *ep_set;
  guint               ep_idx;

  WeftDeadline        deadline_kind;
  gint64              deadline_ms;
  /* the request body's clock (slow POST): it runs while weft waits on the
   * client for body bytes, from body_clock_ms when bytes_in was
   * body_clock_bytes; each limits.min_request_body_rate bytes since add a
   * second to timeouts.request_body */
  gint64              body_clock_ms;
  guint64             body_clock_bytes;
  gboolean            expect_pending; /* Expect: 100-continue, no 1xx or answer passed on yet */
  gboolean            head_started; /* bytes of a request head arrived */
  guint               n_requests;
  guint32             orig_port;    /* SO_ORIGINAL_DST port; 0 = not asked, G_MAXUINT32 = none */

  /* traffic policy of the exchange */
  guint               tries;        /* tries under the retry policy, the first included */
  WeftBuf            *replay;       /* body bytes sent upstream, kept for a retry */
  gsize               replay_sent;  /* of them, sent again on this try */
  gboolean            replay_lost;  /* the body outgrew what a retry may resend */
  GSource            *timer;        /* fault delay or retry backoff */
  guint               timer_action;
  gint64              req_deadline_ms;  /* the request's own deadline; 0 = none */
  gint64              try_deadline_ms;  /* this try's deadline; 0 = none */
  gint64              try_start_us;
  gboolean            attempt_open; /* an endpoint was picked and not yet judged */
  gboolean            has_hash;
  guint64             hash;
  char                ep_key[72];   /* pool key of an endpoint given the request's port */
  struct _WeftMirror *mirrors[WEFT_MAX_MIRRORS];
  guint               n_mirrors;
  char                up_addr[72];  /* the endpoint of the current try, as text */
  guint64             bytes_in;     /* read from the client, whole connection */
  guint64             bytes_out;    /* written to the client, whole connection */
  guint64             idle_mark;    /* bytes_out when the response-idle deadline was set */
  gint64              open_us;
  WeftPhase           resume_phase; /* where a suspended request goes on */
  guint               resume_hook;
  WeftTlsSession     *tls;          /* inbound mTLS, else NULL */
  WeftConnTlsState    tls_state;
  WeftTlsMode         tls_mode;     /* the listener's, when accepted */
  guint32             tls_want;     /* EPOLLIN or EPOLLOUT while handshaking */
  gboolean            opened;       /* plugins were told it opened */
  char               *up_identity;  /* SPIFFE ID of the last mTLS upstream that answered */
  WeftPipe           *req_pipe;     /* request body spliced client -> upstream */
  WeftPipe           *resp_pipe;    /* response body spliced upstream -> client */
};

/* a connection accepted on @wl; the worker owns it */
WeftConn *weft_conn_new     (WeftWorker *worker, WeftWorkerListener *wl, int fd,
                             const struct sockaddr *peer, socklen_t peer_len);
/* the tick: handles an expired deadline */
void      weft_conn_check_deadline (WeftConn *conn, gint64 now_ms);
/* closes an idle connection; busy ones finish their request first */
void      weft_conn_drain   (WeftConn *conn);
/* closes now, whatever it is doing */
void      weft_conn_abort   (WeftConn *conn);
void      weft_conn_free    (WeftConn *conn);
/* continues a request a hook suspended (weft_request_resume) */
void      weft_conn_resume  (WeftConn *conn, WeftHookResult result);

G_END_DECLS
