/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Upstreams: endpoint sets, the five load balancers, outlier detection and
 * the pool limits. Everything a worker calls (pick, report, attempt_start,
 * attempt_end, overflowing, request_hash) takes no lock, allocates nothing
 * and sets no GError; ejecting an endpoint takes weft_shared_lock () for a
 * scan of the set.
 */
#include "weft-upstream-private.h"
#include "weft-log-private.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define WEFT_RR_STRIDE 16   /* guints: 64 bytes between workers' counters */
#define WEFT_RNG_STRIDE (WEFT_CACHE_LINE / sizeof (guint64))

#define WEFT_PICK_NONE_IDX G_MAXUINT

/* ring hash: table_size is the least number of points on the ring; each
 * endpoint gets max(table_size / n, WEFT_RING_MIN_POINTS) points, so from
 * about 7 endpoints on (with the default size) the count per endpoint does
 * not depend on n and adding or removing one endpoint moves only its keys */
#define WEFT_RING_DEFAULT_SIZE 1024u
#define WEFT_RING_MIN_POINTS   160u
#define WEFT_RING_MAX_SIZE     (1u << 20)
#define WEFT_MAGLEV_DEFAULT_SIZE 65537u
#define WEFT_MAGLEV_MAX_SIZE   5000011u

/* least request: peak EWMA as linkerd2-proxy does it */
#define WEFT_LR_TAU_MS          10000.0
#define WEFT_LR_DEFAULT_RTT_US  1000.0   /* an endpoint with no sample yet */

/* outlier detection */
#define WEFT_OUTLIER_DEFAULT_BASE_MS     30000u
#define WEFT_OUTLIER_DEFAULT_MAX_PERCENT 10u
#define WEFT_OUTLIER_MAX_EJECTION_MS     300000u  /* unless the base is longer */
#define WEFT_OUTLIER_DECAY_MS            10000    /* one step off the count per 10 s back */

G_STATIC_ASSERT (sizeof (WeftEndpointOutlier) == WEFT_CACHE_LINE);

/* ------------------------------------------------------------------ */
/* small helpers                                                        */
/* ------------------------------------------------------------------ */

static inline guint64
weft_fmix64 (guint64 k)
{
  k ^= k >> 33;
  k *= G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
  k ^= k >> 33;
  k *= G_GUINT64_CONSTANT (0xc4ceb9fe1a85ec53);
  k ^= k >> 33;
  return k;
}

guint64
weft_hash64 (const void *data, gsize len, guint64 seed)
{
  const guint8 *p = data;
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325) ^ weft_fmix64 (seed);

  for (gsize i = 0; i < len; i++)
    {
      h ^= p[i];
      h *= G_GUINT64_CONSTANT (0x100000001b3);
    }
  return weft_fmix64 (h ^ len);
}

/* xorshift64*: per worker, no lock */
static inline guint64
weft_rng_next (guint64 *state)
{
  guint64 x = *state;

  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * G_GUINT64_CONSTANT (0x2545f4914f6cdd1d);
}

/* uniform in [0, n) (multiply-shift; the bias is below 2^-32 * n) */
static inline guint
weft_rng_below (guint64 *state, guint n)
{
  return (guint) (((weft_rng_next (state) >> 32) * (guint64) n) >> 32);
}

/* e^-x for x >= 0, without libm: halve x below 1/2, Taylor, square back */
static double
weft_exp_neg (double x)
{
  double term = 1.0, sum = 1.0;
  guint k = 0;

  if (!(x > 0.0))
    return 1.0;
  if (x > 700.0)
    return 0.0;
  while (x > 0.5)
    {
      x *= 0.5;
      k++;
    }
  for (guint i = 1; i <= 12; i++)
    {
      term *= -x / i;
      sum += term;
    }
  while (k-- > 0)
    sum *= sum;
  return sum;
}

static gboolean
weft_is_prime (guint n)
{
  if (n < 2)
    return FALSE;
  if (n % 2 == 0)
    return n == 2;
  for (guint d = 3; (guint64) d * d <= n; d += 2)
    if (n % d == 0)
      return FALSE;
  return TRUE;
}

/* ejected_until_ms: a 64-bit atomic where pointers are 64 bits wide, else
 * read and written under the shared lock */
static inline gint64
weft_outlier_until_get (WeftEndpointOutlier *o)
{
#if GLIB_SIZEOF_VOID_P >= 8
  return g_atomic_pointer_get (&o->ejected_until_ms);
#else
  gint64 v;
  weft_shared_lock ();
  v = o->ejected_until_ms;
  weft_shared_unlock ();
  return v;
#endif
}

/* the same, for a caller holding weft_shared_lock () */
static inline gint64
weft_outlier_until_get_locked (WeftEndpointOutlier *o)
{
#if GLIB_SIZEOF_VOID_P >= 8
  return g_atomic_pointer_get (&o->ejected_until_ms);
#else
  return o->ejected_until_ms;
#endif
}

/* caller holds weft_shared_lock () */
static inline void
weft_outlier_until_set_locked (WeftEndpointOutlier *o, gint64 v)
{
#if GLIB_SIZEOF_VOID_P >= 8
  g_atomic_pointer_set (&o->ejected_until_ms, v);
#else
  o->ejected_until_ms = v;
#endif
}

/* clears @expected (an ejection that is over); TRUE for the one caller that did */
static inline gboolean
weft_outlier_until_clear (WeftEndpointOutlier *o, gint64 expected)
{
#if GLIB_SIZEOF_VOID_P >= 8
  return g_atomic_pointer_compare_and_exchange (&o->ejected_until_ms, expected, (gint64) 0);
#else
  gboolean done;
  weft_shared_lock ();
  done = o->ejected_until_ms == expected;
  if (done)
    o->ejected_until_ms = 0;
  weft_shared_unlock ();
  return done;
#endif
}

static gboolean
weft_outlier_enabled (WeftUpstream *up)
{
  return up->outlier.consecutive_5xx > 0 || up->outlier.consecutive_gateway_errors > 0;
}

/* ------------------------------------------------------------------ */
/* endpoint sets                                                        */
/* ------------------------------------------------------------------ */

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

in_port_t *
weft_sockaddr_port (struct sockaddr_storage *addr)
{
  if (addr->ss_family == AF_INET)
    return &((struct sockaddr_in *) addr)->sin_port;
  if (addr->ss_family == AF_INET6)
    return &((struct sockaddr_in6 *) addr)->sin6_port;
  return NULL;
}

gboolean
weft_endpoint_has_port (const WeftEndpoint *ep)
{
  struct sockaddr_storage addr = ep->addr;
  in_port_t *port = weft_sockaddr_port (&addr);

  return port == NULL || *port != 0;
}

const char *
weft_endpoint_address (const WeftEndpoint *ep, guint16 port, struct sockaddr_storage *addr,
                       char *key_buf, gsize key_len)
{
  in_port_t *p;
  const char *colon;

  *addr = ep->addr;
  p = weft_sockaddr_port (addr);
  if (p == NULL || *p != 0)
    return ep->key;
  *p = htons (port);
  if (key_buf == NULL)
    return NULL;
  colon = strrchr (ep->key, ':');
  g_snprintf (key_buf, key_len, "%.*s:%u", (int) (colon - ep->key), ep->key, port);
  return key_buf;
}

static WeftEndpointSet *
weft_endpoint_set_alloc (guint n, guint n_workers)
{
  WeftEndpointSet *set = g_new0 (WeftEndpointSet, 1);
  guint stride = MAX (n, 1);

  /* each worker's block of health entries starts on its own cache line */
  while ((stride * sizeof (WeftEndpointHealth)) % WEFT_CACHE_LINE != 0)
    stride++;
  set->n = n;
  set->n_workers = MAX (n_workers, 1);
  set->endpoints = g_new0 (WeftEndpoint, MAX (n, 1));
  set->health_stride = stride;
  set->health = g_aligned_alloc0 ((gsize) stride * set->n_workers, sizeof (WeftEndpointHealth),
                                  WEFT_CACHE_LINE);
  set->outlier = g_aligned_alloc0 (MAX (n, 1), sizeof (WeftEndpointOutlier), WEFT_CACHE_LINE);
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
  g_aligned_free (set->health);
  g_aligned_free (set->outlier);
  g_free (set->ring);
  g_free (set->maglev);
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

/* the endpoints of @src; health, outlier state and tables start empty */
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

static int
weft_ring_point_cmp (const void *a, const void *b)
{
  const WeftRingPoint *pa = a, *pb = b;

  if (pa->hash != pb->hash)
    return pa->hash < pb->hash ? -1 : 1;
  return pa->idx < pb->idx ? -1 : pa->idx > pb->idx;
}

/* Ketama-style: the points of an endpoint hash its "ip:port" key with the
 * replica number as seed, so they depend on the key alone */
static void
weft_endpoint_set_build_ring (WeftEndpointSet *set, guint table_size)
{
  guint per = MAX ((table_size + set->n - 1) / set->n, WEFT_RING_MIN_POINTS);
  guint k = 0;

  if ((guint64) per * set->n > MAX (WEFT_RING_MAX_SIZE, table_size))
    per = MAX (MAX (WEFT_RING_MAX_SIZE, table_size) / set->n, 1u);
  set->n_ring = per * set->n;
  set->ring = g_new (WeftRingPoint, set->n_ring);
  for (guint i = 0; i < set->n; i++)
    {
      const char *key = set->endpoints[i].key;
      gsize len = strlen (key);
      for (guint r = 0; r < per; r++)
        {
          set->ring[k].hash = weft_hash64 (key, len, r);
          set->ring[k].idx = i;
          k++;
        }
    }
  qsort (set->ring, set->n_ring, sizeof *set->ring, weft_ring_point_cmp);
}

static gint
weft_maglev_order_cmp (gconstpointer a, gconstpointer b, gpointer data)
{
  const WeftEndpoint *endpoints = data;
  guint ia = *(const guint *) a, ib = *(const guint *) b;
  int c = strcmp (endpoints[ia].key, endpoints[ib].key);

  return c != 0 ? c : (ia < ib ? -1 : ia > ib);
}

/* Maglev (Eisenbud et al., NSDI 2016, section 3.4): each endpoint walks its
 * own permutation of the table (offset and skip from two hashes of its key)
 * and the endpoints take turns claiming their next free entry. Turns go in
 * key order, so the table depends on the set of keys, not on DNS order. */
static void
weft_endpoint_set_build_maglev (WeftEndpointSet *set, guint size)
{
  guint n = set->n;
  g_autofree guint *order = g_new (guint, n);
  g_autofree guint64 *pos = g_new (guint64, n);
  g_autofree guint64 *skip = g_new (guint64, n);
  guint filled = 0;

  for (guint i = 0; i < n; i++)
    order[i] = i;
  g_qsort_with_data (order, (gint) n, sizeof *order, weft_maglev_order_cmp, set->endpoints);
  for (guint k = 0; k < n; k++)
    {
      const char *key = set->endpoints[order[k]].key;
      gsize len = strlen (key);
      pos[k] = weft_hash64 (key, len, G_GUINT64_CONSTANT (0x6d61676c6576)) % size;
      skip[k] = weft_hash64 (key, len, G_GUINT64_CONSTANT (0x736b6970)) % (size - 1) + 1;
    }
  set->maglev_size = size;
  set->maglev = g_new (guint32, size);
  memset (set->maglev, 0xff, (gsize) size * sizeof (guint32));
  while (filled < size)
    for (guint k = 0; k < n && filled < size; k++)
      {
        guint64 c = pos[k];
        /* size is prime and skip in [1, size): the walk reaches every entry */
        while (set->maglev[c] != G_MAXUINT32)
          c = (c + skip[k]) % size;
        set->maglev[c] = order[k];
        pos[k] = (c + skip[k]) % size;
        filled++;
      }
}

static guint
weft_lb_table_size (const WeftLbSpec *lb)
{
  if (lb->policy == WEFT_LB_RING_HASH)
    return lb->table_size != 0 ? lb->table_size : WEFT_RING_DEFAULT_SIZE;
  if (lb->policy == WEFT_LB_MAGLEV)
    return lb->table_size != 0 ? lb->table_size : WEFT_MAGLEV_DEFAULT_SIZE;
  return 0;
}

static gboolean
weft_endpoint_set_has_table_for (WeftEndpointSet *set, const WeftLbSpec *lb)
{
  if (lb->policy != WEFT_LB_RING_HASH && lb->policy != WEFT_LB_MAGLEV)
    return TRUE;
  return set->table_policy == lb->policy && set->table_size == weft_lb_table_size (lb);
}

void
weft_endpoint_set_build_table (WeftEndpointSet *set, const WeftLbSpec *lb)
{
  g_clear_pointer (&set->ring, g_free);
  g_clear_pointer (&set->maglev, g_free);
  set->n_ring = 0;
  set->maglev_size = 0;
  set->table_policy = WEFT_LB_ROUND_ROBIN;
  set->table_size = 0;
  if (lb->policy != WEFT_LB_RING_HASH && lb->policy != WEFT_LB_MAGLEV)
    return;
  set->table_policy = lb->policy;
  set->table_size = weft_lb_table_size (lb);
  if (set->n == 0)
    return;
  if (lb->policy == WEFT_LB_RING_HASH)
    weft_endpoint_set_build_ring (set, set->table_size);
  else
    weft_endpoint_set_build_maglev (set, set->table_size);
}

/* main thread: ejections follow an endpoint (by key) into a new set */
static void
weft_endpoint_set_carry_outlier (WeftEndpointSet *to, WeftEndpointSet *from)
{
  g_autoptr(GHashTable) by_key = NULL;

  if (from == NULL || to == NULL || from->n == 0 || to->n == 0)
    return;
  by_key = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < from->n; i++)
    g_hash_table_insert (by_key, from->endpoints[i].key, GUINT_TO_POINTER (i + 1));
  weft_shared_lock ();
  for (guint i = 0; i < to->n; i++)
    {
      guint j = GPOINTER_TO_UINT (g_hash_table_lookup (by_key, to->endpoints[i].key));
      WeftEndpointOutlier *src, *dst;
      if (j == 0)
        continue;
      src = &from->outlier[j - 1];
      dst = &to->outlier[i];
      dst->ejections = src->ejections;
      dst->last_until_ms = src->last_until_ms;
      weft_outlier_until_set_locked (dst, weft_outlier_until_get_locked (src));
    }
  weft_shared_unlock ();
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

/* ------------------------------------------------------------------ */
/* upstreams                                                            */
/* ------------------------------------------------------------------ */

static gboolean weft_upstream_check_policy (const WeftLbSpec *lb, const WeftOutlierSpec *outlier,
                                            GError **error);
static void weft_upstream_store_policy (WeftUpstream *up, const WeftLbSpec *lb,
                                        const WeftOutlierSpec *outlier, const WeftPoolSpec *pool);

WeftUpstream *
weft_upstream_new (WeftUpstreamConfig *config, guint n_workers, WeftUpstream *previous)
{
  WeftUpstream *up = g_new0 (WeftUpstream, 1);
  g_autoptr(GError) error = NULL;
  WeftEndpointSet *set;

  up->name = g_strdup (config->name);
  up->config = config;
  up->n_workers = MAX (n_workers, 1);
  up->rr = g_new0 (guint, (gsize) up->n_workers * WEFT_RR_STRIDE);
  up->inflight = g_new0 (guint, (gsize) up->n_workers * WEFT_RR_STRIDE);
  up->rng = g_new0 (guint64, (gsize) up->n_workers * WEFT_RNG_STRIDE);
  for (guint w = 0; w < up->n_workers; w++)
    up->rng[(gsize) w * WEFT_RNG_STRIDE] = ((guint64) g_random_int () << 32 | g_random_int ()) | 1;
  up->retired = g_ptr_array_new_with_free_func ((GDestroyNotify) weft_endpoint_set_free);

  /* the config was validated when it was loaded; a bad policy here (a
   * config built by hand) falls back to round robin */
  if (weft_upstream_check_policy (&config->lb, &config->outlier, &error))
    weft_upstream_store_policy (up, &config->lb, &config->outlier, &config->pool);
  else
    {
      weft_log (WEFT_LOG_WARNING, "upstream", "%s: %s; using round robin", up->name,
                error->message);
      weft_upstream_store_policy (up, NULL, NULL, &config->pool);
    }

  set = weft_upstream_static_set (config, n_workers, &up->needs_dns);
  /* a reload keeps the addresses DNS found, so a named upstream has
   * endpoints from the first request of the new generation on */
  if (up->needs_dns && previous != NULL && previous->set != NULL &&
      weft_upstream_same_endpoints (config, previous->config))
    {
      weft_endpoint_set_free (set);
      set = weft_endpoint_set_copy (previous->set, n_workers);
    }
  weft_endpoint_set_build_table (set, &up->lb);
  /* and ejected endpoints stay ejected across a reload */
  if (previous != NULL && weft_outlier_enabled (up))
    weft_endpoint_set_carry_outlier (set, g_atomic_pointer_get (&previous->set));
  up->set = set;
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
  g_free (up->rng);
  g_free (up->hash_key);
  g_free (up->name);
  g_free (up);
}

const char *
weft_upstream_get_name (WeftUpstream *upstream)
{
  return upstream != NULL ? upstream->name : NULL;
}

void
weft_upstream_replace_set (WeftUpstream *up, WeftEndpointSet *set)
{
  WeftEndpointSet *old = up->set;

  weft_endpoint_set_build_table (set, &up->lb);
  if (weft_outlier_enabled (up))
    weft_endpoint_set_carry_outlier (set, old);
  if (old != NULL)
    g_ptr_array_add (up->retired, old);
  g_atomic_pointer_set (&up->set, set);
}

guint64
weft_upstream_connect_ms (WeftUpstream *up, guint64 global_ms)
{
  if (up == NULL)
    return global_ms;
  if (up->pool.connect_timeout_ms != 0)
    return up->pool.connect_timeout_ms;
  if (up->config != NULL && up->config->connect_ms != 0)
    return up->config->connect_ms;
  return global_ms;
}

guint
weft_upstream_max_requests_per_connection (WeftUpstream *up)
{
  return up != NULL ? up->pool.max_requests_per_connection : 0;
}

/* ------------------------------------------------------------------ */
/* picking                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
  WeftUpstream       *up;
  WeftEndpointSet    *set;
  WeftEndpointHealth *health;   /* this worker's */
  guint64            *rng;
  gint64              now_ms;
  guint               avoid;    /* WEFT_PICK_NONE_IDX = none */
  gboolean            outlier;  /* outlier detection is on */
} WeftPick;

/* FALSE while @i is ejected; the first caller to see an ejection over logs it */
static gboolean
weft_pick_not_ejected (WeftPick *p, guint i)
{
  WeftEndpointOutlier *o = &p->set->outlier[i];
  gint64 until;

  if (!p->outlier)
    return TRUE;
  until = weft_outlier_until_get (o);
  if (until == 0)
    return TRUE;
  if (until > p->now_ms)
    return FALSE;
  if (weft_outlier_until_clear (o, until))
    weft_log (WEFT_LOG_INFO, "upstream", "%s: endpoint %s is back after its ejection",
              p->up->name, p->set->endpoints[i].key);
  return TRUE;
}

static gboolean
weft_pick_usable (WeftPick *p, guint i)
{
  WeftEndpointHealth *h = &p->health[i];

  return (h->retry_at_ms == 0 || h->retry_at_ms <= p->now_ms) && weft_pick_not_ejected (p, i);
}

static gboolean
weft_pick_candidate (WeftPick *p, guint i)
{
  return i != p->avoid && weft_pick_usable (p, i);
}

/* the index of the endpoint @avoid names in @set, or WEFT_PICK_NONE_IDX; a
 * retry after a DNS change finds it by key */
static guint
weft_pick_avoid_index (WeftEndpointSet *set, const WeftPickHints *hints)
{
  WeftEndpointSet *other;
  const char *key;

  if (hints == NULL || hints->avoid_set == NULL)
    return WEFT_PICK_NONE_IDX;
  other = hints->avoid_set;
  if (other == set)
    return hints->avoid_idx < set->n ? hints->avoid_idx : WEFT_PICK_NONE_IDX;
  if (hints->avoid_idx >= other->n)
    return WEFT_PICK_NONE_IDX;
  key = other->endpoints[hints->avoid_idx].key;
  for (guint i = 0; i < set->n; i++)
    if (strcmp (set->endpoints[i].key, key) == 0)
      return i;
  return WEFT_PICK_NONE_IDX;
}

/* the @r-th candidate (skipping @skip too), or WEFT_PICK_NONE_IDX */
static guint
weft_pick_nth_candidate (WeftPick *p, guint r, guint skip)
{
  for (guint i = 0; i < p->set->n; i++)
    if (i != skip && weft_pick_candidate (p, i) && r-- == 0)
      return i;
  return WEFT_PICK_NONE_IDX;
}

/* uniform among the candidates other than @skip: a few random probes, then
 * a count and a second draw, which is uniform too */
static guint
weft_pick_random_except (WeftPick *p, guint skip)
{
  guint n = p->set->n, count = 0;

  for (guint tries = 0; tries < 4; tries++)
    {
      guint i = weft_rng_below (p->rng, n);
      if (i != skip && weft_pick_candidate (p, i))
        return i;
    }
  for (guint i = 0; i < n; i++)
    count += i != skip && weft_pick_candidate (p, i);
  if (count == 0)
    return WEFT_PICK_NONE_IDX;
  return weft_pick_nth_candidate (p, weft_rng_below (p->rng, count), skip);
}

static guint
weft_pick_round_robin (WeftPick *p, guint *rr)
{
  for (guint k = 0; k < p->set->n; k++)
    {
      guint i = (*rr + k) % p->set->n;
      if (weft_pick_candidate (p, i))
        return i;
    }
  return WEFT_PICK_NONE_IDX;
}

/* the peak-EWMA latency decayed to now (toward zero, so an endpoint left
 * alone for a while gets tried again), times the attempts in flight plus one */
static double
weft_lr_cost (WeftEndpointHealth *h, gint64 now_ms)
{
  double rtt = WEFT_LR_DEFAULT_RTT_US;

  if (h->has_rtt)
    rtt = h->rtt_us * weft_exp_neg ((double) MAX (now_ms - h->rtt_at_ms, 0) / WEFT_LR_TAU_MS);
  return MAX (rtt, 1.0) * (h->outstanding + 1);
}

/* power of two choices: two distinct random candidates, the cheaper wins
 * (the first on a tie, and the first is random, so ties spread) */
static guint
weft_pick_least_request (WeftPick *p)
{
  guint a = weft_pick_random_except (p, WEFT_PICK_NONE_IDX);
  guint b;

  if (a == WEFT_PICK_NONE_IDX)
    return a;
  b = weft_pick_random_except (p, a);
  if (b == WEFT_PICK_NONE_IDX)
    return a;
  return weft_lr_cost (&p->health[b], p->now_ms) < weft_lr_cost (&p->health[a], p->now_ms)
         ? b : a;
}

static gboolean
weft_pick_any_candidate (WeftPick *p)
{
  for (guint i = 0; i < p->set->n; i++)
    if (weft_pick_candidate (p, i))
      return TRUE;
  return FALSE;
}

/* the first ring point at or after @hash (wrapping), then onwards to the
 * first candidate */
static guint
weft_pick_ring (WeftPick *p, guint64 hash)
{
  WeftEndpointSet *set = p->set;
  guint lo = 0, hi = set->n_ring, idx;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      if (set->ring[mid].hash < hash)
        lo = mid + 1;
      else
        hi = mid;
    }
  if (lo == set->n_ring)
    lo = 0;
  idx = set->ring[lo].idx;
  if (weft_pick_candidate (p, idx))
    return idx;
  if (!weft_pick_any_candidate (p))
    return WEFT_PICK_NONE_IDX;
  for (guint k = 1; k < set->n_ring; k++)
    {
      idx = set->ring[(lo + k) % set->n_ring].idx;
      if (weft_pick_candidate (p, idx))
        return idx;
    }
  return WEFT_PICK_NONE_IDX;
}

static guint
weft_pick_maglev (WeftPick *p, guint64 hash)
{
  WeftEndpointSet *set = p->set;
  guint start = (guint) (hash % set->maglev_size);
  guint idx = set->maglev[start];

  if (idx < set->n && weft_pick_candidate (p, idx))
    return idx;
  if (!weft_pick_any_candidate (p))
    return WEFT_PICK_NONE_IDX;
  for (guint k = 1; k < set->maglev_size; k++)
    {
      idx = set->maglev[(start + k) % set->maglev_size];
      if (idx < set->n && weft_pick_candidate (p, idx))
        return idx;
    }
  return WEFT_PICK_NONE_IDX;
}

/* when each endpoint is unhealthy or ejected: the one that is due first */
static guint
weft_pick_soonest (WeftPick *p)
{
  guint best = 0;
  gint64 best_at = G_MAXINT64;

  for (guint i = 0; i < p->set->n; i++)
    {
      gint64 at = p->health[i].retry_at_ms;
      if (p->outlier)
        at = MAX (at, weft_outlier_until_get (&p->set->outlier[i]));
      if (at < best_at)
        {
          best_at = at;
          best = i;
        }
    }
  return best;
}

WeftPickResult
weft_upstream_pick (WeftUpstream *up, guint w, gint64 now_ms, const WeftPickHints *hints,
                    WeftEndpointSet **out_set, guint *out_idx, gboolean *all_down)
{
  WeftEndpointSet *set = g_atomic_pointer_get (&up->set);
  gsize wi = MIN (w, up->n_workers - 1);
  guint *rr = &up->rr[wi * WEFT_RR_STRIDE];
  gboolean hashed = hints != NULL && hints->has_hash;
  WeftPick p;
  guint idx;

  *all_down = FALSE;
  /* a set of names only is empty until a lookup answers (a failed
   * refresh keeps what an earlier one found) */
  if (set == NULL || set->n == 0)
    return up->needs_dns ? WEFT_PICK_UNRESOLVED : WEFT_PICK_NONE;
  p.up = up;
  p.set = set;
  p.health = weft_endpoint_set_health (set, w);
  p.rng = &up->rng[wi * WEFT_RNG_STRIDE];
  p.now_ms = now_ms;
  p.outlier = weft_outlier_enabled (up);
  p.avoid = weft_pick_avoid_index (set, hints);

  switch (up->lb.policy)
    {
    case WEFT_LB_RANDOM:
      idx = weft_pick_random_except (&p, WEFT_PICK_NONE_IDX);
      break;
    case WEFT_LB_LEAST_REQUEST:
      idx = weft_pick_least_request (&p);
      break;
    case WEFT_LB_RING_HASH:
      idx = hashed && set->n_ring > 0 ? weft_pick_ring (&p, hints->hash)
                                      : weft_pick_random_except (&p, WEFT_PICK_NONE_IDX);
      break;
    case WEFT_LB_MAGLEV:
      idx = hashed && set->maglev_size > 0 ? weft_pick_maglev (&p, hints->hash)
                                           : weft_pick_random_except (&p, WEFT_PICK_NONE_IDX);
      break;
    case WEFT_LB_ROUND_ROBIN:
    default:
      idx = weft_pick_round_robin (&p, rr);
      break;
    }
  /* the endpoint to avoid is still better than none */
  if (idx == WEFT_PICK_NONE_IDX && p.avoid != WEFT_PICK_NONE_IDX && weft_pick_usable (&p, p.avoid))
    idx = p.avoid;
  if (idx == WEFT_PICK_NONE_IDX)
    {
      /* every endpoint is down: try the one due soonest rather than fail */
      *all_down = TRUE;
      idx = weft_pick_soonest (&p);
    }
  if (up->lb.policy == WEFT_LB_ROUND_ROBIN)
    *rr = idx + 1;
  *out_set = set;
  *out_idx = idx;
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
  h = &weft_endpoint_set_health (set, w)[idx];
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

/* ------------------------------------------------------------------ */
/* request hashing                                                      */
/* ------------------------------------------------------------------ */

/* the value of cookie @name in one Cookie header ("a=1; b=2"), without
 * surrounding double quotes; FALSE when absent or empty */
static gboolean
weft_cookie_find (const char *header, const char *name, const char **value, gsize *len)
{
  gsize name_len = strlen (name);
  const char *p = header;

  while (*p != '\0')
    {
      const char *end, *eq;
      while (*p == ' ' || *p == '\t' || *p == ';')
        p++;
      end = strchr (p, ';');
      if (end == NULL)
        end = p + strlen (p);
      eq = memchr (p, '=', (gsize) (end - p));
      if (eq != NULL && (gsize) (eq - p) == name_len && memcmp (p, name, name_len) == 0)
        {
          const char *v = eq + 1, *v_end = end;
          while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
          if (v_end - v >= 2 && *v == '"' && v_end[-1] == '"')
            {
              v++;
              v_end--;
            }
          if (v_end == v)
            return FALSE;
          *value = v;
          *len = (gsize) (v_end - v);
          return TRUE;
        }
      p = end;
    }
  return FALSE;
}

gboolean
weft_upstream_request_hash (WeftUpstream *up, WeftRequest *req, guint64 *hash)
{
  const char *text = NULL;
  gsize len = 0;

  *hash = 0;
  if (up == NULL || req == NULL ||
      (up->lb.policy != WEFT_LB_RING_HASH && up->lb.policy != WEFT_LB_MAGLEV))
    return FALSE;
  switch (up->lb.hash_on)
    {
    case WEFT_HASH_ON_HEADER:
      if (up->hash_key == NULL)
        return FALSE;
      text = weft_request_get_header (req, up->hash_key);
      if (text == NULL)
        return FALSE;
      len = strlen (text);
      break;
    case WEFT_HASH_ON_COOKIE:
      {
        const char *name, *value;
        gboolean found = FALSE;
        if (up->hash_key == NULL)
          return FALSE;
        for (guint i = 0; !found && weft_request_get_header_nth (req, i, &name, &value); i++)
          if (g_ascii_strcasecmp (name, "cookie") == 0)
            found = weft_cookie_find (value, up->hash_key, &text, &len);
        if (!found)
          return FALSE;
      }
      break;
    case WEFT_HASH_ON_SOURCE_IP:
      text = weft_request_get_peer_ip (req);
      if (text == NULL || *text == '\0')
        return FALSE;
      len = strlen (text);
      break;
    case WEFT_HASH_ON_NONE:
    default:
      return FALSE;
    }
  *hash = weft_hash64 (text, len, 0);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* attempts: latency and outlier detection                              */
/* ------------------------------------------------------------------ */

void
weft_upstream_attempt_start (WeftUpstream *up, WeftEndpointSet *set, guint idx, guint w)
{
  up->inflight[(gsize) MIN (w, up->n_workers - 1) * WEFT_RR_STRIDE]++;
  if (set != NULL && idx < set->n)
    weft_endpoint_set_health (set, w)[idx].outstanding++;
}

/* a new latency sample into the worker's peak EWMA of the endpoint */
static void
weft_lr_observe (WeftEndpointHealth *h, double sample_us, gint64 now_ms)
{
  if (!h->has_rtt || sample_us > h->rtt_us)
    h->rtt_us = sample_us;
  else
    {
      double w = weft_exp_neg ((double) MAX (now_ms - h->rtt_at_ms, 0) / WEFT_LR_TAU_MS);
      h->rtt_us = h->rtt_us * w + sample_us * (1.0 - w);
    }
  h->rtt_at_ms = now_ms;
  h->has_rtt = TRUE;
}

/* how many of @set's endpoints are ejected at @now_ms; under the shared lock */
static guint
weft_outlier_count_ejected (WeftEndpointSet *set, gint64 now_ms)
{
  guint n = 0;

  for (guint i = 0; i < set->n; i++)
    n += weft_outlier_until_get_locked (&set->outlier[i]) > now_ms;
  return n;
}

static void
weft_outlier_eject (WeftUpstream *up, WeftEndpointSet *set, guint idx, gint64 now_ms,
                    const char *why, guint count)
{
  WeftEndpointOutlier *o = &set->outlier[idx];
  guint64 base = up->outlier.base_ejection_ms != 0 ? up->outlier.base_ejection_ms
                                                   : WEFT_OUTLIER_DEFAULT_BASE_MS;
  guint pct = up->outlier.max_ejection_percent != 0 ? up->outlier.max_ejection_percent
                                                    : WEFT_OUTLIER_DEFAULT_MAX_PERCENT;
  guint64 ms = 0;
  guint ejected, times = 0;
  gboolean refused = FALSE;

  /* one endpoint: ejecting it would only send its traffic to it anyway */
  if (set->n < 2)
    return;
  weft_shared_lock ();
  if (weft_outlier_until_get_locked (o) > now_ms)
    {
      weft_shared_unlock ();
      return;
    }
  ejected = weft_outlier_count_ejected (set, now_ms);
  /* at most pct% ejected at once, but one may always be */
  if (ejected > 0 && (guint64) (ejected + 1) * 100 > (guint64) pct * set->n)
    refused = TRUE;
  else
    {
      /* the count steps back once per 10 s the endpoint stayed in */
      if (o->ejections > 0 && o->last_until_ms < now_ms)
        {
          gint64 steps = (now_ms - o->last_until_ms) / WEFT_OUTLIER_DECAY_MS;
          o->ejections = steps >= o->ejections ? 0 : o->ejections - (guint) steps;
        }
      times = ++o->ejections;
      ms = MIN (base * times, MAX (base, (guint64) WEFT_OUTLIER_MAX_EJECTION_MS));
      o->last_until_ms = now_ms + (gint64) ms;
      weft_outlier_until_set_locked (o, o->last_until_ms);
    }
  weft_shared_unlock ();

  if (refused)
    weft_log (WEFT_LOG_DEBUG, "upstream",
              "%s: endpoint %s not ejected after %u %s: %u of %u are ejected already",
              up->name, set->endpoints[idx].key, count, why, ejected, set->n);
  else
    weft_log (WEFT_LOG_WARNING, "upstream",
              "%s: endpoint %s ejected for %" G_GUINT64_FORMAT " ms after %u %s "
              "(ejection %u)", up->name, set->endpoints[idx].key, ms, count, why, times);
}

static void
weft_outlier_observe (WeftUpstream *up, WeftEndpointSet *set, guint idx, WeftOutcome outcome,
                      guint status, gint64 now_ms)
{
  WeftEndpointOutlier *o = &set->outlier[idx];
  guint t5xx = up->outlier.consecutive_5xx;
  guint tgw = up->outlier.consecutive_gateway_errors;
  gboolean is_5xx = FALSE, is_gateway = FALSE;

  switch (outcome)
    {
    case WEFT_OUTCOME_RESPONSE:
      is_5xx = status >= 500 && status <= 599;
      is_gateway = status >= 502 && status <= 504;
      break;
    case WEFT_OUTCOME_CONNECT_FAILED:
    case WEFT_OUTCOME_RESET:
    case WEFT_OUTCOME_TIMEOUT:
      is_5xx = is_gateway = TRUE;
      break;
    case WEFT_OUTCOME_CANCELLED:
    default:
      return;
    }
  if (!is_5xx)
    {
      /* read first: a healthy endpoint's line stays shared, not written */
      if (g_atomic_int_get (&o->consecutive_5xx) != 0)
        g_atomic_int_set (&o->consecutive_5xx, 0);
      if (g_atomic_int_get (&o->consecutive_gateway) != 0)
        g_atomic_int_set (&o->consecutive_gateway, 0);
      return;
    }
  /* as Envoy: a gateway error counts toward both, another 5xx ends a run of
   * gateway errors; the worker that reaches a threshold ejects and restarts
   * the count, whether the ejection happens or not */
  if (is_gateway)
    {
      if (tgw > 0 && (guint) g_atomic_int_add (&o->consecutive_gateway, 1) + 1 == tgw)
        {
          g_atomic_int_set (&o->consecutive_gateway, 0);
          g_atomic_int_set (&o->consecutive_5xx, 0);
          weft_outlier_eject (up, set, idx, now_ms, "gateway errors in a row", tgw);
          return;
        }
    }
  else if (g_atomic_int_get (&o->consecutive_gateway) != 0)
    g_atomic_int_set (&o->consecutive_gateway, 0);
  if (t5xx > 0 && (guint) g_atomic_int_add (&o->consecutive_5xx, 1) + 1 == t5xx)
    {
      g_atomic_int_set (&o->consecutive_5xx, 0);
      g_atomic_int_set (&o->consecutive_gateway, 0);
      weft_outlier_eject (up, set, idx, now_ms, "5xx answers in a row", t5xx);
    }
}

void
weft_upstream_attempt_end (WeftUpstream *up, WeftEndpointSet *set, guint idx, guint w,
                           WeftOutcome outcome, guint status, gint64 latency_us, gint64 now_ms)
{
  guint *n = &up->inflight[(gsize) MIN (w, up->n_workers - 1) * WEFT_RR_STRIDE];
  WeftEndpointHealth *h;
  gboolean failed;

  if (*n > 0)
    (*n)--;
  if (set == NULL || idx >= set->n)
    return;
  h = &weft_endpoint_set_health (set, w)[idx];
  if (h->outstanding > 0)
    h->outstanding--;
  if (outcome == WEFT_OUTCOME_CANCELLED)
    return;

  /* a failure counts at least twice the estimate, so an endpoint that
   * fails fast does not look fast */
  failed = outcome != WEFT_OUTCOME_RESPONSE || (status >= 502 && status <= 504);
  /* only least-request reads the latency estimate: others skip the exp() */
  if (up->lb.policy == WEFT_LB_LEAST_REQUEST && (latency_us >= 0 || failed))
    {
      double sample = MAX (latency_us, 0);
      if (failed)
        sample = MAX (sample, 2.0 * (h->has_rtt ? MAX (h->rtt_us, WEFT_LR_DEFAULT_RTT_US)
                                                : WEFT_LR_DEFAULT_RTT_US));
      weft_lr_observe (h, sample, now_ms);
    }
  if (weft_outlier_enabled (up))
    weft_outlier_observe (up, set, idx, outcome, status, now_ms);
}

gboolean
weft_upstream_overflowing (WeftUpstream *up, guint w)
{
  return up->pool.max_requests > 0 &&
         up->inflight[(gsize) MIN (w, up->n_workers - 1) * WEFT_RR_STRIDE] >= up->pool.max_requests;
}

/* ------------------------------------------------------------------ */
/* policy (config time, main thread)                                    */
/* ------------------------------------------------------------------ */

static gboolean
weft_upstream_check_policy (const WeftLbSpec *lb, const WeftOutlierSpec *outlier, GError **error)
{
  if (lb != NULL)
    {
      if ((guint) lb->policy > WEFT_LB_MAGLEV)
        {
          g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                       "unknown load balancer policy %d", (int) lb->policy);
          return FALSE;
        }
      if ((guint) lb->hash_on > WEFT_HASH_ON_SOURCE_IP)
        {
          g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG, "unknown hash_on %d",
                       (int) lb->hash_on);
          return FALSE;
        }
      if ((lb->hash_on == WEFT_HASH_ON_HEADER || lb->hash_on == WEFT_HASH_ON_COOKIE) &&
          (lb->hash_key == NULL || *lb->hash_key == '\0'))
        {
          g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                       "hashing on a header or a cookie needs its name");
          return FALSE;
        }
      if (lb->policy == WEFT_LB_RING_HASH && lb->table_size > WEFT_RING_MAX_SIZE)
        {
          g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                       "ring hash table size %u is over %u", lb->table_size,
                       WEFT_RING_MAX_SIZE);
          return FALSE;
        }
      if (lb->policy == WEFT_LB_MAGLEV && lb->table_size != 0 &&
          (!weft_is_prime (lb->table_size) || lb->table_size > WEFT_MAGLEV_MAX_SIZE))
        {
          g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                       "Maglev table size %u is not a prime up to %u", lb->table_size,
                       WEFT_MAGLEV_MAX_SIZE);
          return FALSE;
        }
    }
  if (outlier != NULL && outlier->max_ejection_percent > 100)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG,
                   "max_ejection_percent %u is over 100", outlier->max_ejection_percent);
      return FALSE;
    }
  return TRUE;
}

static void
weft_upstream_store_policy (WeftUpstream *up, const WeftLbSpec *lb,
                            const WeftOutlierSpec *outlier, const WeftPoolSpec *pool)
{
  if (lb != NULL)
    {
      /* copy before freeing: @lb may be &up->lb */
      char *key = g_strdup (lb->hash_key);
      up->lb = *lb;
      g_free (up->hash_key);
      up->hash_key = key;
      up->lb.hash_key = up->hash_key;
    }
  if (outlier != NULL)
    up->outlier = *outlier;
  if (pool != NULL)
    up->pool = *pool;
}

gboolean
weft_upstream_set_policy (WeftUpstream *up, const WeftLbSpec *lb, const WeftOutlierSpec *outlier,
                          const WeftPoolSpec *pool, GError **error)
{
  WeftEndpointSet *set;

  if (!weft_upstream_check_policy (lb, outlier, error))
    return FALSE;
  weft_upstream_store_policy (up, lb, outlier, pool);
  /* a policy needing another table gets a new set: workers never see a
   * table half built */
  set = up->set;
  if (set != NULL && !weft_endpoint_set_has_table_for (set, &up->lb))
    weft_upstream_replace_set (up, weft_endpoint_set_copy (set, up->n_workers));
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
  weft_upstream_replace_set (up, set);
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
