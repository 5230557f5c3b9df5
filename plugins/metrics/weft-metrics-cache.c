/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftMetricsCache: a worker's open-addressed table from label-making
 * facts to the series they resolve to. Only the worker touches it, so it
 * needs no lock; entries are allocated on a miss, never on a hit.
 */
#include "weft-metrics-plugin-private.h"

#include <string.h>

typedef struct {
  guint64  hash;
  char    *key;
  gsize    len;
  gpointer value;
} WeftMetricsCacheEntry;

struct _WeftMetricsCache {
  WeftMetricsCacheEntry *slots;
  guint                  cap;    /* a power of two */
  guint                  n;
};

/* eight bytes a step: keys are mostly pointers and integers */
guint64
weft_metrics_hash (const char *data, gsize len)
{
  guint64 h = 0x9e3779b97f4a7c15ULL ^ len;
  guint64 w;

  for (; len >= 8; data += 8, len -= 8)
    {
      memcpy (&w, data, 8);
      h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
      h ^= h >> 31;
    }
  w = 0;
  memcpy (&w, data, len);
  h = (h ^ w) * 0x94d049bb133111ebULL;
  return h ^ (h >> 29);
}

WeftMetricsCache *
weft_metrics_cache_new (void)
{
  WeftMetricsCache *cache = g_new0 (WeftMetricsCache, 1);

  cache->cap = 64;
  cache->slots = g_new0 (WeftMetricsCacheEntry, cache->cap);
  return cache;
}

void
weft_metrics_cache_free (WeftMetricsCache *cache)
{
  if (cache == NULL)
    return;
  for (guint i = 0; i < cache->cap; i++)
    {
      g_free (cache->slots[i].key);
      g_free (cache->slots[i].value);
    }
  g_free (cache->slots);
  g_free (cache);
}

static WeftMetricsCacheEntry *
weft_metrics_cache_probe (WeftMetricsCacheEntry *slots, guint cap, const char *key, gsize len,
                          guint64 hash)
{
  for (guint i = (guint) hash & (cap - 1);; i = (i + 1) & (cap - 1))
    {
      WeftMetricsCacheEntry *e = &slots[i];
      if (e->key == NULL)
        return e;
      if (e->hash == hash && e->len == len && memcmp (e->key, key, len) == 0)
        return e;
    }
}

gpointer
weft_metrics_cache_lookup (WeftMetricsCache *cache, const char *key, gsize len, guint64 hash)
{
  return weft_metrics_cache_probe (cache->slots, cache->cap, key, len, hash)->value;
}

static void
weft_metrics_cache_grow (WeftMetricsCache *cache)
{
  guint cap = cache->cap * 2;
  WeftMetricsCacheEntry *slots = g_new0 (WeftMetricsCacheEntry, cap);

  for (guint i = 0; i < cache->cap; i++)
    if (cache->slots[i].key != NULL)
      *weft_metrics_cache_probe (slots, cap, cache->slots[i].key, cache->slots[i].len,
                                 cache->slots[i].hash) = cache->slots[i];
  g_free (cache->slots);
  cache->slots = slots;
  cache->cap = cap;
}

gpointer
weft_metrics_cache_insert (WeftMetricsCache *cache, const char *key, gsize len, guint64 hash,
                           gconstpointer value, gsize value_size)
{
  WeftMetricsCacheEntry *e;

  /* at most half full keeps probes short */
  if ((cache->n + 1) * 2 > cache->cap)
    weft_metrics_cache_grow (cache);
  e = weft_metrics_cache_probe (cache->slots, cache->cap, key, len, hash);
  if (e->key == NULL)
    {
      e->key = g_memdup2 (key, len);
      e->len = len;
      e->hash = hash;
      cache->n++;
    }
  g_free (e->value);
  e->value = g_memdup2 (value, value_size);
  return e->value;
}

guint
weft_metrics_cache_size (WeftMetricsCache *cache)
{
  return cache->n;
}
