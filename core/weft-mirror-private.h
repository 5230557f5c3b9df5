/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftMirror: a copy of a request sent to another upstream. It has its own
 * connection (with "connection: close"), its answer is read and dropped,
 * and nothing it does reaches the request it copies: it only ever closes
 * itself.
 */
#pragma once

#include "weft-request-private.h"
#include "weft-worker-private.h"

G_BEGIN_DECLS

typedef struct _WeftMirror WeftMirror;

/* the largest body a mirror copies */
#define WEFT_MIRROR_MAX_BODY (64 * 1024)

/* starts mirroring @req to @upstream; NULL when it cannot (no endpoint,
 * socket failure, head too large): the request goes on regardless */
WeftMirror *weft_mirror_start     (WeftWorker *worker, WeftRequest *req, WeftUpstream *upstream,
                                   guint16 request_port);
/* body bytes as they are forwarded */
void        weft_mirror_body      (WeftMirror *mirror, const char *data, gsize len);
/* the request ended: with its whole body copied the mirror finishes on its
 * own, otherwise it is dropped */
void        weft_mirror_detach    (WeftMirror *mirror, gboolean body_complete);
/* the tick: drops mirrors past their deadline */
void        weft_mirror_check_deadlines (WeftWorker *worker, gint64 now_ms);
/* worker teardown and batch end */
void        weft_mirror_close_all (WeftWorker *worker);
void        weft_mirror_free_dead (WeftWorker *worker);

G_END_DECLS
