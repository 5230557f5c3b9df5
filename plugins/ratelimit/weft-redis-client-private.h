/* weft-redis-client-private.h: a worker's non-blocking Redis connection
 * for global rate limits
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <sys/socket.h>
#include <glib.h>

#include "weft-rate-table-private.h"

G_BEGIN_DECLS

/**
 * WeftRedisClient:
 *
 * One pipelined RESP connection to Redis, owned by one worker and driven by
 * its loop. Each check runs one Lua script (GCRA on Redis's own clock, so
 * every sidecar sharing the key agrees). A check that gets no reply within
 * the timeout fails, the connection is dropped, and new connections are
 * tried at most twice a second; meanwhile checks fail at once.
 */
typedef struct _WeftRedisClient WeftRedisClient;

/* @ok FALSE: Redis could not decide (down, slow, an error reply) */
typedef void (*WeftRedisReplyFunc) (gpointer data, gboolean ok, const WeftRateVerdict *verdict);

WeftRedisClient *weft_redis_client_new  (const struct sockaddr *addr, socklen_t addr_len,
                                         guint64 timeout_ms);
void             weft_redis_client_free (WeftRedisClient *client);

/**
 * weft_redis_client_take:
 * @key: the Redis key of the bucket
 * @func: called once with the verdict, from the worker's loop, never from
 *   inside this call
 * @handle: (out): for weft_redis_client_forget()
 *
 * Returns: FALSE when the check cannot be sent (no connection, too many in
 * flight); @func is then never called.
 */
gboolean weft_redis_client_take   (WeftRedisClient *client, const char *key, gsize key_len,
                                   guint64 interval_us, guint burst,
                                   WeftRedisReplyFunc func, gpointer data, guint64 *handle);
/* the check's caller is gone: @func will not be called */
void     weft_redis_client_forget (WeftRedisClient *client, guint64 handle);

/* the Lua script, for tests */
extern const char weft_redis_gcra_script[];

G_END_DECLS
