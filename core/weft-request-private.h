/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftRequest: one exchange as the phases see it. Lives inside its client
 * connection; its header arrays and scratch memory come from the request's
 * head buffer (a pooled buffer), so a request allocates nothing from malloc
 * in steady state.
 */
#pragma once

#include <weft/plugin.h>
#include "weft-buf-pool-private.h"
#include "weft-generation-private.h"
#include "weft-http-parser-private.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;
  const char *value;
  guint32     name_len;
  guint32     value_len;
} WeftHdr;

typedef struct {
  WeftHdr *items;
  guint    n;
  guint    cap;
} WeftHdrList;

/* bump memory over pooled buffers; big blocks fall back to malloc */
typedef struct {
  WeftBuf  *bufs[8];      /* bufs[0] is the head buffer the arena starts in */
  guint     n_bufs;
  GSList   *big;          /* g_malloc'd blocks */
} WeftArena;

typedef struct _WeftConn WeftConn;

struct _WeftRequest {
  WeftConn       *conn;
  WeftBufPool    *bufs;
  WeftGeneration *gen;
  WeftListener   *listener;
  WeftArena       arena;

  /* request */
  const char     *method;
  const char     *path;
  const char     *authority;
  guint8          version_minor;
  gboolean        is_head;
  gboolean        idempotent;
  gboolean        upgrade;
  const char     *upgrade_value;
  WeftHttpBodyKind body_kind;
  guint64         content_length;
  WeftHdrList     headers;
  const char     *request_id;

  /* response */
  guint           status;
  const char     *reason;
  WeftHttpBodyKind resp_body_kind;
  guint64         resp_content_length;
  gboolean        resp_keep_alive;
  WeftHdrList     resp_headers;
  WeftBuf        *resp_head;      /* holds the parsed upstream response head */

  /* a local answer */
  gboolean        local;
  const char     *local_body;
  gsize           local_body_len;
  const char     *error_reason;   /* x-weft-error token */

  WeftUpstream   *upstream;
  /* traffic policy from the route phase */
  gboolean        has_timeout;
  guint64         timeout_ms;     /* 0 = none; else replaces timeouts.request */
  WeftRetryPolicy *retry;
  guint64         delay_ms;
  WeftUpstream   *mirrors[WEFT_MAX_MIRRORS];
  guint           n_mirrors;
  gpointer        data[WEFT_MAX_PLUGINS];
  gint64          start_us;
  gint64          start_wall_us;
  const char     *route_name;

  /* what observers see (metrics, traces, logs) */
  guint32         resp_flags;     /* WeftResponseFlags */
  guint64         bytes_received;
  guint64         bytes_sent;
  const char     *upstream_addr;  /* the conn's up_addr once a try picked one */
  const char     *upstream_identity; /* the conn's up_identity once an mTLS upstream answered */
  const char     *trace_id;

  /* a hook is waiting (weft_request_suspend) */
  gboolean        suspended;
  WeftRequestCancelFunc cancel;
  gpointer        cancel_data;
};

void     weft_request_begin   (WeftRequest *req, WeftConn *conn, WeftBufPool *bufs,
                               WeftBuf *head_buf, const WeftHttpHead *head);
/* calls the cancel callback of a suspended request */
void     weft_request_cancel_suspension (WeftRequest *req);
/* releases the arena; the head buffers go back to the pool */
void     weft_request_end     (WeftRequest *req);
/* copies the parsed response head's headers into the request */
void     weft_request_set_response_head (WeftRequest *req, WeftBuf *head_buf,
                                         const WeftHttpHead *head);
/* serialises the upstream request head into @out; FALSE if it does not fit.
 * @authority_suffix (mirrors: "-shadow") is appended to the host header;
 * @close adds connection: close */
gboolean weft_request_write_upstream_head (WeftRequest *req, WeftBuf *out,
                                           const char *authority_suffix, gboolean close);
/* serialises the response head to the client; @close adds connection: close */
gboolean weft_request_write_response_head (WeftRequest *req, WeftBuf *out, gboolean close);
/* serialises a local answer's head (status, headers, content-length) */
gboolean weft_request_write_local_head (WeftRequest *req, WeftBuf *out, gboolean close);
const char *weft_http_status_phrase (guint status);
/* the index of @name in @list, from @from on, or -1 */
gint     weft_hdr_list_find   (const WeftHdrList *list, const char *name, guint from);

G_END_DECLS
