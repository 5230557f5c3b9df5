/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-upstream-private.h"
#include "weft-log-private.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <string.h>

#define WEFT_RR_STRIDE 16   /* guints: 64 bytes between workers' counters */

gboolean
weft_endpoint_init (WeftEndpoint *ep, const char *host, guint16 port)
{
  struct sockaddr_in *sin = (struct sockaddr_in *) &ep->addr;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ep->addr;

  memset (&ep->addr, 0, sizeof ep->addr);
  if (inet_pton (AF_INET, host, &sin->sin_addr) == 1)
    {
      sin->sin_family = AF_INET;
      sin->sin_port = htons (port);
      ep->addr_len = sizeof *sin;
      ep->key = g_strdup_printf ("%s:%u", host, port);
      return TRUE;
    }
  if (inet_pton (AF_INET6, host, &sin6->sin6_addr) == 1)
    {
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons (port);
      ep->addr_len = sizeof *sin6;
      ep->key = g_strdup_printf ("[%s]:%u", host, port);
      return TRUE;
    }
  return FALSE;
}

static WeftEndpointSet *
weft_endpoint_set_alloc (guint n, guint n_workers)
{
  WeftEndpointSet *set = g_new0 (WeftEndpointSet, 1);

  set->n = n;
  set->n_workers = MAX (n_workers, 1);
  set->endpoints = g_new0 (WeftEndpoint, MAX (n, 1));
  set->health = g_new0 (WeftEndpointHealth, (gsize) MAX (n, 1) * set->n_workers);
  return set;
}

/* @addresses: "host:port" strings with IP hosts (port 0: use @port) */
WeftEndpointSet *
weft_endpoint_set_new (GPtrArray *addresses, guint16 port, guint n_workers)
{
  WeftEndpointSet *set = weft_endpoint_set_alloc (addresses->len, n_workers);
  guint n = 0;

  for (guint i = 0; i < addresses->len; i++)
    if (weft_endpoint_init (&set->endpoints[n], addresses->pdata[i], port))
      n++;
  set->n = n;
  return set;
}

void
weft_endpoint_set_free (WeftEndpointSet *set)
{
  if (set == NULL)
    return;
  for (guint i = 0; i < set->n; i++)
    g_free (set->endpoints[i].key);
  g_free (set->endpoints);
  g_free (set->health);
  g_free (set);
}

static gboolean
weft_endpoint_set_equal (WeftEndpointSet *a, WeftEndpointSet *b)
{
  if (a == NULL || b == NULL || a->n != b->n)
    return FALSE;
  for (guint i = 0; i < a->n; i++)
    if (strcmp (a->endpoints[i].key, b->endpoints[i].key) != 0)
      return FALSE;
  return TRUE;
}

static WeftEndpointSet *
weft_endpoint_set_copy (WeftEndpointSet *src, guint n_workers)
{
  WeftEndpointSet *set = weft_endpoint_set_alloc (src->n, n_workers);

  for (guint i = 0; i < src->n; i++)
    {
      set->endpoints[i] = src->endpoints[i];
      set->endpoints[i].key = g_strdup (src->endpoints[i].key);
    }
  return set;
}

static gboolean
weft_upstream_same_endpoints (WeftUpstreamConfig *a, WeftUpstreamConfig *b)
{
  if (a->endpoints->len != b->endpoints->len)
    return FALSE;
  for (guint i = 0; i < a->endpoints->len; i++)
    {
      WeftEndpointConfig *ea = a->endpoints->pdata[i];
      WeftEndpointConfig *eb = b->endpoints->pdata[i];
      if (ea->port != eb->port || g_ascii_strcasecmp (ea->host, eb->host) != 0)
        return FALSE;
    }
  return TRUE;
}

/* the IP endpoints of the config; names are left to DNS */
static WeftEndpointSet *
weft_upstream_static_set (WeftUpstreamConfig *config, guint n_workers, gboolean *needs_dns)
{
  WeftEndpointSet *set = weft_endpoint_set_alloc (config->endpoints->len, n_workers);
  guint n = 0;

  *needs_dns = FALSE;
  for (guint i = 0; i < config->endpoints->len; i++)
    {
      WeftEndpointConfig *ec = config->endpoints->pdata[i];
      if (ec->is_ip && weft_endpoint_init (&set->endpoints[n], ec->host, ec->port))
        n++;
      else if (!ec->is_ip)
        *needs_dns = TRUE;
    }
  set->n = n;
  return set;
}

WeftUpstream *
weft_upstream_new (WeftUpstreamConfig *config, guint n_workers, WeftUpstream *previous)
{
  WeftUpstream *up = g_new0 (WeftUpstream, 1);

  up->name = g_strdup (config->name);
  up->config = config;
  up->n_workers = MAX (n_workers, 1);
  up->rr = g_new0 (guint, (gsize) up->n_workers * WEFT_RR_STRIDE);
  up->inflight = g_new0 (guint, (gsize) up->n_workers * WEFT_RR_STRIDE);
  up->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_endpoint_set_free);
  up->set = weft_upstream_static_set (config, n_workers, &up->needs_dns);
  /* a reload keeps the addresses DNS found, so a named upstream has
   * endpoints from the first request of the new generation on */
  if (up->needs_dns && previous != NULL && previous->set != NULL &&
      weft_upstream_same_endpoints (config, previous->config))
    {
      weft_endpoint_set_free (up->set);
      up->set = weft_endpoint_set_copy (previous->set, n_workers);
    }
  return up;
}

void
weft_upstream_free (WeftUpstream *up)
{
  if (up == NULL)
    return;
  weft_upstream_stop_dns (up);
  weft_endpoint_set_free (up->set);
  g_ptr_array_unref (up->retired);
  g_free (up->rr);
  g_free (up->inflight);
  g_free (up->hash_key);
  g_free (up->name);
  g_free (up);
}

const char *
weft_upstream_get_name (WeftUpstream *upstream)
{
  return upstream != NULL ? upstream->name : NULL;
}

static gboolean
weft_endpoint_usable (WeftEndpointHealth *h, gint64 now_ms)
{
  return h->retry_at_ms == 0 || h->retry_at_ms <= now_ms;
}

WeftPickResult
weft_upstream_pick (WeftUpstream *up, guint w, gint64 now_ms, const WeftPickHints *hints,
                    WeftEndpointSet **out_set, guint *out_idx, gboolean *all_down)
{
  WeftEndpointSet *set = g_atomic_pointer_get (&up->set);
  WeftEndpointHealth *health;
  guint *rr = &up->rr[(gsize) MIN (w, up->n_workers - 1) * WEFT_RR_STRIDE];
  guint best = 0;
  gint64 best_at = G_MAXINT64;

  *all_down = FALSE;
  if (set == NULL || set->n == 0)
    return WEFT_PICK_NONE;
  health = &set->health[(gsize) MIN (w, set->n_workers - 1) * set->n];
  for (guint k = 0; k < set->n; k++)
    {
      guint i = (*rr + k) % set->n;
      if (weft_endpoint_usable (&health[i], now_ms))
        {
          *rr = i + 1;
          *out_set = set;
          *out_idx = i;
          return WEFT_PICK_OK;
        }
      if (health[i].retry_at_ms < best_at)
        {
          best_at = health[i].retry_at_ms;
          best = i;
        }
    }
  /* every endpoint is down: try the one due soonest rather than fail */
  *all_down = TRUE;
  *rr = best + 1;
  *out_set = set;
  *out_idx = best;
  return WEFT_PICK_OK;
}

void
weft_upstream_report (WeftUpstream *up, WeftEndpointSet *set, guint idx, guint w,
                      gboolean ok, gint64 now_ms)
{
  WeftEndpointHealth *h;
  WeftUpstreamConfig *config = up->config;

  if (set == NULL || idx >= set->n)
    return;
  h = &set->health[(gsize) MIN (w, set->n_workers - 1) * set->n + idx];
  if (ok)
    {
      if (h->retry_at_ms != 0)
        weft_log (WEFT_LOG_INFO, "upstream", "%s: endpoint %s is healthy again",
                  up->name, set->endpoints[idx].key);
      h->fails = 0;
      h->retry_at_ms = 0;
      h->backoff_ms = 0;
      return;
    }
  h->fails++;
  if (h->fails < MAX (config->unhealthy_after, 1u))
    return;
  /* unhealthy: skip it for a backoff that doubles on each failed retry */
  h->backoff_ms = h->backoff_ms == 0 ? config->unhealthy_backoff_ms
                                     : MIN (h->backoff_ms * 2, (guint64) 60000);
  h->retry_at_ms = now_ms + (gint64) h->backoff_ms;
  weft_log (WEFT_LOG_WARNING, "upstream",
            "%s: endpoint %s failed %u times in a row, skipped for %" G_GUINT64_FORMAT " ms",
            up->name, set->endpoints[idx].key, h->fails, h->backoff_ms);
}

gboolean
weft_upstream_request_hash (WeftUpstream *up, WeftRequest *req, guint64 *hash)
{
  (void) up;
  (void) req;
  *hash = 0;
  return FALSE;
}

void
weft_upstream_attempt_start (WeftUpstream *up, WeftEndpointSet *set, guint idx, guint w)
{
  (void) set;
  (void) idx;
  up->inflight[(gsize) MIN (w, up->n_workers - 1) * WEFT_RR_STRIDE]++;
}

void
weft_upstream_attempt_end (WeftUpstream *up, WeftEndpointSet *set, guint idx, guint w,
                           WeftOutcome outcome, guint status, gint64 latency_us, gint64 now_ms)
{
  guint *n = &up->inflight[(gsize) MIN (w, up->n_workers - 1) * WEFT_RR_STRIDE];

  (void) set;
  (void) idx;
  (void) outcome;
  (void) status;
  (void) latency_us;
  (void) now_ms;
  if (*n > 0)
    (*n)--;
}

gboolean
weft_upstream_overflowing (WeftUpstream *up, guint w)
{
  return up->pool.max_requests > 0 &&
         up->inflight[(gsize) MIN (w, up->n_workers - 1) * WEFT_RR_STRIDE] >= up->pool.max_requests;
}

gboolean
weft_upstream_set_policy (WeftUpstream *up, const WeftLbSpec *lb, const WeftOutlierSpec *outlier,
                          const WeftPoolSpec *pool, GError **error)
{
  (void) error;
  if (lb != NULL)
    {
      up->lb = *lb;
      g_free (up->hash_key);
      up->hash_key = g_strdup (lb->hash_key);
      up->lb.hash_key = up->hash_key;
    }
  if (outlier != NULL)
    up->outlier = *outlier;
  if (pool != NULL)
    up->pool = *pool;
  return TRUE;
}

/* DNS: main thread only */

static void weft_upstream_resolve (WeftUpstream *up);

static void
weft_upstream_dns_finish (WeftUpstream *up)
{
  g_autoptr(GPtrArray) addrs = g_steal_pointer (&up->pending);
  WeftUpstreamConfig *config = up->config;
  WeftEndpointSet *set;
  guint n = 0;

  up->resolving = FALSE;
  set = weft_endpoint_set_alloc (addrs->len + config->endpoints->len, up->n_workers);
  for (guint i = 0; i < config->endpoints->len; i++)
    {
      WeftEndpointConfig *ec = config->endpoints->pdata[i];
      if (ec->is_ip && weft_endpoint_init (&set->endpoints[n], ec->host, ec->port))
        n++;
    }
  for (guint i = 0; i < addrs->len; i++)
    {
      WeftEndpoint *ep = addrs->pdata[i];
      set->endpoints[n] = *ep;
      set->endpoints[n].key = g_strdup (ep->key);
      n++;
    }
  set->n = n;
  if (addrs->len == 0)
    {
      /* every lookup failed: keep the addresses we had */
      weft_endpoint_set_free (set);
      return;
    }
  if (weft_endpoint_set_equal (set, up->set))
    {
      weft_endpoint_set_free (set);
      return;
    }
  weft_log (WEFT_LOG_INFO, "upstream", "%s: %u endpoints after DNS", up->name, n);
  g_ptr_array_add (up->retired, up->set);
  g_atomic_pointer_set (&up->set, set);
}

typedef struct {
  WeftUpstream *up;
  guint16       port;
  char         *host;
} WeftDnsLookup;

static void
weft_endpoint_free_one (gpointer data)
{
  WeftEndpoint *ep = data;

  g_free (ep->key);
  g_free (ep);
}

static void
weft_dns_lookup_free (WeftDnsLookup *lookup)
{
  g_free (lookup->host);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftDnsLookup, weft_dns_lookup_free)

static void
weft_upstream_lookup_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(WeftDnsLookup) lookup = data;
  g_autoptr(GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);
  WeftUpstream *up = lookup->up;

  /* cancelled: the upstream may be gone already */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (error != NULL)
    weft_log (WEFT_LOG_WARNING, "upstream", "%s: cannot resolve %s: %s (keeping %u endpoints)",
              up->name, lookup->host, error->message, up->set ? up->set->n : 0);
  for (GList *l = addresses; l != NULL; l = l->next)
    {
      g_autofree char *ip = g_inet_address_to_string (l->data);
      WeftEndpoint *ep = g_new0 (WeftEndpoint, 1);
      if (weft_endpoint_init (ep, ip, lookup->port))
        g_ptr_array_add (up->pending, ep);
      else
        g_free (ep);
    }
  g_resolver_free_addresses (addresses);
  if (--up->n_pending == 0)
    weft_upstream_dns_finish (up);
}

static void
weft_upstream_resolve (WeftUpstream *up)
{
  g_autoptr(GResolver) resolver = g_resolver_get_default ();
  WeftUpstreamConfig *config = up->config;

  if (up->resolving)
    return;
  up->resolving = TRUE;
  up->pending = g_ptr_array_new_with_free_func (weft_endpoint_free_one);
  up->n_pending = 1;
  for (guint i = 0; i < config->endpoints->len; i++)
    {
      WeftEndpointConfig *ec = config->endpoints->pdata[i];
      WeftDnsLookup *lookup;
      if (ec->is_ip)
        continue;
      lookup = g_new0 (WeftDnsLookup, 1);
      lookup->up = up;
      lookup->port = ec->port;
      lookup->host = g_strdup (ec->host);
      up->n_pending++;
      g_resolver_lookup_by_name_async (resolver, ec->host, up->cancel,
                                       weft_upstream_lookup_done, lookup);
    }
  if (--up->n_pending == 0)
    weft_upstream_dns_finish (up);
}

static gboolean
weft_upstream_dns_tick (gpointer data)
{
  weft_upstream_resolve (data);
  return G_SOURCE_CONTINUE;
}

void
weft_upstream_start_dns (WeftUpstream *up)
{
  if (!up->needs_dns || up->timer_id != 0)
    return;
  up->cancel = g_cancellable_new ();
  weft_upstream_resolve (up);
  up->timer_id = g_timeout_add (MAX (up->config->dns_refresh_ms, (guint64) 100),
                                weft_upstream_dns_tick, up);
}

void
weft_upstream_stop_dns (WeftUpstream *up)
{
  if (up->timer_id != 0)
    g_source_remove (up->timer_id);
  up->timer_id = 0;
  if (up->cancel != NULL)
    {
      g_cancellable_cancel (up->cancel);
      g_clear_object (&up->cancel);
    }
  if (up->pending != NULL)
    g_clear_pointer (&up->pending, g_ptr_array_unref);
}
