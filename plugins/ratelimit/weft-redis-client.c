/* weft-redis-client.c: a worker's non-blocking Redis connection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-redis-client-private.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include <weft/plugin.h>

#define WEFT_REDIS_MAX_PENDING  1024
#define WEFT_REDIS_RECONNECT_US (500 * G_TIME_SPAN_MILLISECOND)
#define WEFT_REDIS_MAX_IN       (64 * 1024)

/* GCRA on Redis's clock: KEYS[1] bucket, ARGV[1] microseconds per token,
 * ARGV[2] burst. Returns {admitted, remaining, retry_us, reset_us}. */
const char weft_redis_gcra_script[] =
  "local t = redis.call('TIME')\n"
  "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
  "local interval = tonumber(ARGV[1])\n"
  "local tolerance = interval * (tonumber(ARGV[2]) - 1)\n"
  "local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
  "if tat < now then tat = now end\n"
  "local ahead = tat - now\n"
  "if ahead > tolerance then return {0, 0, ahead - tolerance, ahead} end\n"
  "local new = tat + interval\n"
  "redis.call('SET', KEYS[1], string.format('%d', new), 'PX',\n"
  "           string.format('%d', math.floor((new - now) / 1000) + 1))\n"
  "return {1, math.floor((tolerance - ahead) / interval), 0, ahead + interval}\n";

typedef struct {
  guint64             seq;
  WeftRedisReplyFunc  func;      /* NULL: forgotten, or the script load */
  gpointer            data;
  gint64              deadline_us;
} WeftRedisPending;

struct _WeftRedisClient {
  struct sockaddr_storage addr;
  socklen_t           addr_len;
  gint64              timeout_us;
  char                sha[41];

  int                 fd;
  guint               watch;
  gboolean            connected;
  gint64              retry_at_us;
  GString            *out;
  gsize               out_sent;
  GByteArray         *in;
  guint               timer;
  gboolean            reloading;    /* a SCRIPT LOAD after NOSCRIPT is out */

  WeftRedisPending    pending[WEFT_REDIS_MAX_PENDING];
  guint               head;
  guint               count;
  guint64             next_seq;
};

static void weft_redis_client_drop (WeftRedisClient *client);
static void weft_redis_client_load_script (WeftRedisClient *client);

/* ------------------------------------------------------------------ */
/* RESP                                                                 */
/* ------------------------------------------------------------------ */

static void
weft_redis_arg (GString *out, const char *arg, gsize len)
{
  g_string_append_printf (out, "$%zu\r\n", len);
  g_string_append_len (out, arg, (gssize) len);
  g_string_append_len (out, "\r\n", 2);
}

static void
weft_redis_arg_u64 (GString *out, guint64 v)
{
  char num[24];
  int n = g_snprintf (num, sizeof num, "%" G_GUINT64_FORMAT, v);

  weft_redis_arg (out, num, (gsize) n);
}

/* the line at @pos, without CRLF; -1 when incomplete */
static gssize
weft_redis_line (const guint8 *buf, gsize len, gsize pos)
{
  for (gsize i = pos; i + 1 < len; i++)
    if (buf[i] == '\r' && buf[i + 1] == '\n')
      return (gssize) (i - pos);
  return -1;
}

typedef struct {
  gboolean error;
  gboolean noscript;      /* Redis lost the script (SCRIPT FLUSH, a failover) */
  guint    n_ints;
  gint64   ints[4];
} WeftRedisReply;

/* parses one reply at *@pos: 1 done, 0 incomplete, -1 not RESP */
static int
weft_redis_parse (const guint8 *buf, gsize len, gsize *pos, WeftRedisReply *reply, guint depth)
{
  gssize line = weft_redis_line (buf, len, *pos);
  const char *p = (const char *) buf + *pos + 1;
  gint64 n;

  if (line < 0)
    return 0;
  if (line < 1 || depth > 2)
    return -1;
  n = g_ascii_strtoll (p, NULL, 10);
  *pos += (gsize) line + 2;
  switch (buf[*pos - (gsize) line - 2])
    {
    case '+':
      return 1;
    case '-':
      reply->error = TRUE;
      reply->noscript = g_str_has_prefix (p, "NOSCRIPT");
      return 1;
    case ':':
      if (reply->n_ints < G_N_ELEMENTS (reply->ints))
        reply->ints[reply->n_ints++] = n;
      return 1;
    case '$':
      if (n < 0)
        return 1;
      if (len < *pos + (gsize) n + 2)
        return 0;
      *pos += (gsize) n + 2;
      return 1;
    case '*':
      for (gint64 i = 0; i < n; i++)
        {
          int r = weft_redis_parse (buf, len, pos, reply, depth + 1);
          if (r <= 0)
            return r;
        }
      return 1;
    default:
      return -1;
    }
}

/* ------------------------------------------------------------------ */
/* the pending queue                                                    */
/* ------------------------------------------------------------------ */

static WeftRedisPending *
weft_redis_push (WeftRedisClient *client, WeftRedisReplyFunc func, gpointer data)
{
  WeftRedisPending *p = &client->pending[(client->head + client->count) % WEFT_REDIS_MAX_PENDING];

  client->count++;
  p->seq = ++client->next_seq;
  p->func = func;
  p->data = data;
  p->deadline_us = g_get_monotonic_time () + client->timeout_us;
  return p;
}

/* takes the oldest check off the queue and answers it */
static void
weft_redis_pop (WeftRedisClient *client, gboolean ok, const WeftRedisReply *reply)
{
  WeftRedisPending p = client->pending[client->head];
  WeftRateVerdict v = { 0 };

  client->head = (client->head + 1) % WEFT_REDIS_MAX_PENDING;
  client->count--;
  if (p.func == NULL)
    return;
  ok = ok && reply != NULL && !reply->error && reply->n_ints == 4;
  if (ok)
    {
      v.admitted = reply->ints[0] == 1;
      v.remaining = (guint) CLAMP (reply->ints[1], 0, G_MAXUINT);
      v.retry_us = (guint64) MAX (reply->ints[2], 0);
      v.reset_us = (guint64) MAX (reply->ints[3], 0);
    }
  p.func (p.data, ok, &v);
}

/* ------------------------------------------------------------------ */
/* the connection                                                       */
/* ------------------------------------------------------------------ */

static void
weft_redis_client_watch (WeftRedisClient *client)
{
  GIOCondition cond = G_IO_IN;

  if (!client->connected || client->out_sent < client->out->len)
    cond |= G_IO_OUT;
  weft_worker_fd_update (client->watch, cond);
}

static gboolean
weft_redis_client_flush (WeftRedisClient *client)
{
  while (client->connected && client->out_sent < client->out->len)
    {
      gssize n = send (client->fd, client->out->str + client->out_sent,
                       client->out->len - client->out_sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n < 0)
        return FALSE;
      client->out_sent += (gsize) n;
    }
  if (client->out_sent == client->out->len)
    {
      g_string_truncate (client->out, 0);
      client->out_sent = 0;
    }
  weft_redis_client_watch (client);
  return TRUE;
}

static gboolean
weft_redis_client_read (WeftRedisClient *client)
{
  guint8 chunk[4096];
  gsize pos = 0;

  for (;;)
    {
      gssize n = recv (client->fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0 || client->in->len + (gsize) n > WEFT_REDIS_MAX_IN)
        return FALSE;
      g_byte_array_append (client->in, chunk, (guint) n);
    }
  while (client->count > 0)
    {
      WeftRedisReply reply = { 0 };
      gsize at = pos;
      int r = weft_redis_parse (client->in->data, client->in->len, &at, &reply, 0);
      if (r < 0)
        return FALSE;
      if (r == 0)
        break;
      pos = at;
      /* this check fails; the ones after the reload find the script again */
      if (reply.noscript && !client->reloading)
        {
          weft_log (WEFT_LOG_WARNING, "ratelimit", "redis: the script is gone; loading it again");
          weft_redis_client_load_script (client);
          client->reloading = TRUE;
        }
      else if (client->pending[client->head].func == NULL)
        client->reloading = FALSE;   /* a script load (or a forgotten check) answered */
      weft_redis_pop (client, TRUE, &reply);
      /* an answer's caller may have sent a check that dropped the connection */
      if (client->fd < 0)
        return TRUE;
    }
  g_byte_array_remove_range (client->in, 0, (guint) pos);
  return client->count > 0 || client->in->len == 0;
}

static gboolean
weft_redis_client_event (int fd, GIOCondition cond, gpointer data)
{
  WeftRedisClient *client = data;
  int err = 0;
  socklen_t len = sizeof err;

  if (!client->connected)
    {
      if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
        {
          weft_log (WEFT_LOG_WARNING, "ratelimit", "redis: connect failed: %s",
                    g_strerror (err != 0 ? err : errno));
          weft_redis_client_drop (client);
          return G_SOURCE_CONTINUE;   /* drop removed the watch already */
        }
      client->connected = TRUE;
    }
  if (((cond & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && !weft_redis_client_read (client)) ||
      !weft_redis_client_flush (client))
    {
      weft_log (WEFT_LOG_WARNING, "ratelimit", "redis: connection lost");
      weft_redis_client_drop (client);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean weft_redis_client_tick (gpointer data);

static void
weft_redis_client_arm_timer (WeftRedisClient *client)
{
  guint ms = (guint) MAX (client->timeout_us / 4000, 5);

  if (client->timer == 0)
    client->timer = weft_worker_timeout_add (ms, weft_redis_client_tick, client);
}

/* a check outlived its timeout: Redis is slow or gone, start over */
static gboolean
weft_redis_client_tick (gpointer data)
{
  WeftRedisClient *client = data;

  if (client->count == 0)
    {
      client->timer = 0;
      return G_SOURCE_REMOVE;
    }
  if (client->pending[client->head].deadline_us <= g_get_monotonic_time ())
    {
      weft_log (WEFT_LOG_WARNING, "ratelimit", "redis: no reply within %" G_GINT64_FORMAT " ms",
                client->timeout_us / 1000);
      weft_redis_client_drop (client);
    }
  return G_SOURCE_CONTINUE;
}

/* closes the connection and fails every check in flight */
static void
weft_redis_client_drop (WeftRedisClient *client)
{
  if (client->watch != 0)
    weft_worker_timeout_remove (client->watch);
  client->watch = 0;
  if (client->fd >= 0)
    close (client->fd);
  client->fd = -1;
  client->connected = FALSE;
  client->reloading = FALSE;
  client->retry_at_us = g_get_monotonic_time () + WEFT_REDIS_RECONNECT_US;
  g_string_truncate (client->out, 0);
  client->out_sent = 0;
  g_byte_array_set_size (client->in, 0);
  while (client->count > 0)
    weft_redis_pop (client, FALSE, NULL);
}

/* queues SCRIPT LOAD, so the EVALSHA checks after it find the script */
static void
weft_redis_client_load_script (WeftRedisClient *client)
{
  if (client->count >= WEFT_REDIS_MAX_PENDING)
    return;
  g_string_append (client->out, "*3\r\n");
  weft_redis_arg (client->out, "SCRIPT", 6);
  weft_redis_arg (client->out, "LOAD", 4);
  weft_redis_arg (client->out, weft_redis_gcra_script, strlen (weft_redis_gcra_script));
  weft_redis_push (client, NULL, NULL);
}

static gboolean
weft_redis_client_connect (WeftRedisClient *client)
{
  int one = 1;

  if (g_get_monotonic_time () < client->retry_at_us)
    return FALSE;
  client->fd = socket (client->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (client->fd < 0)
    {
      client->retry_at_us = g_get_monotonic_time () + WEFT_REDIS_RECONNECT_US;
      return FALSE;
    }
  setsockopt (client->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (client->fd, (struct sockaddr *) &client->addr, client->addr_len) < 0 &&
      errno != EINPROGRESS)
    {
      weft_redis_client_drop (client);
      return FALSE;
    }
  client->watch = weft_worker_fd_add (client->fd, G_IO_OUT, weft_redis_client_event, client);
  weft_redis_client_load_script (client);
  weft_redis_client_arm_timer (client);
  return TRUE;
}

gboolean
weft_redis_client_take (WeftRedisClient *client, const char *key, gsize key_len,
                        guint64 interval_us, guint burst, WeftRedisReplyFunc func,
                        gpointer data, guint64 *handle)
{
  if (client->fd < 0 && !weft_redis_client_connect (client))
    return FALSE;
  if (client->count >= WEFT_REDIS_MAX_PENDING)
    return FALSE;
  g_string_append (client->out, "*6\r\n");
  weft_redis_arg (client->out, "EVALSHA", 7);
  weft_redis_arg (client->out, client->sha, 40);
  weft_redis_arg (client->out, "1", 1);
  weft_redis_arg (client->out, key, key_len);
  weft_redis_arg_u64 (client->out, interval_us);
  weft_redis_arg_u64 (client->out, burst);
  *handle = weft_redis_push (client, func, data)->seq;
  weft_redis_client_arm_timer (client);
  if (!weft_redis_client_flush (client))
    {
      /* the caller hears nothing from a check that fails here; the other
       * checks fail from the loop when it sees the shut socket, never from
       * inside this caller's hook */
      client->pending[(client->head + client->count - 1) % WEFT_REDIS_MAX_PENDING].func = NULL;
      shutdown (client->fd, SHUT_RDWR);
      return FALSE;
    }
  return TRUE;
}

void
weft_redis_client_forget (WeftRedisClient *client, guint64 handle)
{
  for (guint i = 0; i < client->count; i++)
    {
      WeftRedisPending *p = &client->pending[(client->head + i) % WEFT_REDIS_MAX_PENDING];
      if (p->seq == handle)
        {
          p->func = NULL;
          return;
        }
    }
}

WeftRedisClient *
weft_redis_client_new (const struct sockaddr *addr, socklen_t addr_len, guint64 timeout_ms)
{
  WeftRedisClient *client = g_new0 (WeftRedisClient, 1);
  g_autofree char *sha = g_compute_checksum_for_string (G_CHECKSUM_SHA1,
                                                         weft_redis_gcra_script, -1);

  memcpy (&client->addr, addr, MIN (addr_len, sizeof client->addr));
  client->addr_len = addr_len;
  client->timeout_us = (gint64) MAX (timeout_ms, 1) * G_TIME_SPAN_MILLISECOND;
  g_strlcpy (client->sha, sha, sizeof client->sha);
  client->fd = -1;
  client->out = g_string_sized_new (4096);
  client->in = g_byte_array_sized_new (4096);
  return client;
}

void
weft_redis_client_free (WeftRedisClient *client)
{
  if (client == NULL)
    return;
  weft_redis_client_drop (client);
  if (client->timer != 0)
    weft_worker_timeout_remove (client->timer);
  g_string_free (client->out, TRUE);
  g_byte_array_unref (client->in);
  g_free (client);
}
