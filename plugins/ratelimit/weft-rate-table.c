/* weft-rate-table.c: token buckets shared by every worker, kept as GCRA
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-rate-table-private.h"

#include <string.h>
#include <sys/mman.h>

#define WEFT_RATE_STRIPES 64
#define WEFT_RATE_PROBES  32

typedef struct {
  guint64 hash;           /* 0 = never used */
  gint64  tat;
} WeftRateSlot;

typedef struct {
  GMutex        lock;
  WeftRateSlot *slots;
  guint         mask;
} WeftRateStripe;

struct _WeftRateTable {
  guint            refs;          /* under the registry lock */
  WeftRateSlot    *slots;         /* every stripe's slots, one mapping */
  gsize            slots_size;
  char            *identity;      /* NULL = not in the registry */
  guint64          interval_us;
  guint            burst;
  gboolean         keyed;
  gint64           tat;           /* unkeyed bucket, and the overflow bucket */
  WeftRateStripe  *stripes;
};

static GMutex      weft_rate_registry_lock;
static GHashTable *weft_rate_registry;   /* identity -> WeftRateTable, unowned */

gint64
weft_rate_gcra (gint64 tat, gint64 now_us, guint64 interval_us, guint burst,
                WeftRateVerdict *verdict)
{
  gint64 t = (gint64) interval_us;
  gint64 tolerance = t * (gint64) (burst > 0 ? burst - 1 : 0);
  gint64 ahead;

  if (tat < now_us)
    tat = now_us;
  ahead = tat - now_us;
  if (ahead > tolerance)
    {
      verdict->admitted = FALSE;
      verdict->remaining = 0;
      verdict->retry_us = (guint64) (ahead - tolerance);
      verdict->reset_us = (guint64) ahead;
      return -1;
    }
  verdict->admitted = TRUE;
  verdict->remaining = (guint) ((tolerance - ahead) / t);
  verdict->retry_us = 0;
  verdict->reset_us = (guint64) (ahead + t);
  return tat + t;
}

/* one bucket in one atomic: a compare-and-swap loop, no lock */
static void
weft_rate_table_take_atomic (WeftRateTable *table, gint64 now_us, WeftRateVerdict *verdict)
{
  gint64 old = __atomic_load_n (&table->tat, __ATOMIC_ACQUIRE);

  for (;;)
    {
      gint64 next = weft_rate_gcra (old, now_us, table->interval_us, table->burst, verdict);
      if (next < 0)
        return;
      /* on failure @old holds the newer value and the step runs again */
      if (__atomic_compare_exchange_n (&table->tat, &old, next, FALSE, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE))
        return;
    }
}

static guint64
weft_rate_hash (const char *key, gsize len)
{
  /* FNV-1a, 64 bits: keys are short and a collision only merges two buckets */
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325);

  for (gsize i = 0; i < len; i++)
    {
      h ^= (guint8) key[i];
      h *= G_GUINT64_CONSTANT (0x100000001b3);
    }
  return h != 0 ? h : 1;
}

/* the slot of @hash in its probe window: its own, else the first free or
 * full (expired) one; NULL when every slot holds another live key */
static WeftRateSlot *
weft_rate_stripe_find (WeftRateStripe *s, guint64 hash, gint64 now_us)
{
  WeftRateSlot *reuse = NULL;
  guint start = (guint) (hash >> 6);

  for (guint i = 0; i < WEFT_RATE_PROBES && i <= s->mask; i++)
    {
      WeftRateSlot *slot = &s->slots[(start + i) & s->mask];
      if (slot->hash == hash)
        return slot;
      if (slot->hash == 0)
        return reuse != NULL ? reuse : slot;   /* no key lives past an unused slot */
      if (reuse == NULL && slot->tat <= now_us)
        reuse = slot;
    }
  return reuse;
}

void
weft_rate_table_take (WeftRateTable *table, const char *key, gsize key_len, gint64 now_us,
                      WeftRateVerdict *verdict)
{
  guint64 hash;
  WeftRateStripe *s;
  WeftRateSlot *slot;
  gint64 next;

  verdict->overflow = FALSE;
  if (!table->keyed)
    {
      weft_rate_table_take_atomic (table, now_us, verdict);
      return;
    }
  hash = weft_rate_hash (key, key_len);
  s = &table->stripes[hash % WEFT_RATE_STRIPES];
  g_mutex_lock (&s->lock);
  slot = weft_rate_stripe_find (s, hash, now_us);
  if (slot != NULL)
    {
      if (slot->hash != hash)
        {
          slot->hash = hash;
          slot->tat = now_us;     /* a new key starts with a full bucket */
        }
      next = weft_rate_gcra (slot->tat, now_us, table->interval_us, table->burst, verdict);
      if (next >= 0)
        slot->tat = next;
    }
  g_mutex_unlock (&s->lock);
  if (slot != NULL)
    return;
  weft_rate_table_take_atomic (table, now_us, verdict);
  verdict->overflow = TRUE;
}

WeftRateTable *
weft_rate_table_new (guint64 interval_us, guint burst, guint max_keys)
{
  WeftRateTable *table = g_new0 (WeftRateTable, 1);
  guint per_stripe;

  table->refs = 1;
  table->interval_us = MAX (interval_us, 1);
  table->burst = MAX (burst, 1);
  table->keyed = max_keys > 0;
  if (!table->keyed)
    return table;
  /* half full at max_keys, so probe windows stay short */
  per_stripe = 16;
  while (per_stripe < (max_keys / WEFT_RATE_STRIPES + 1) * 2)
    per_stripe <<= 1;
  /* an anonymous mapping: pages cost memory only once a key lands on them,
   * where calloc would zero (and so touch) all of it */
  table->slots_size = sizeof (WeftRateSlot) * per_stripe * WEFT_RATE_STRIPES;
  table->slots = mmap (NULL, table->slots_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (table->slots == MAP_FAILED)
    {
      g_free (table);
      return NULL;
    }
  table->stripes = g_new0 (WeftRateStripe, WEFT_RATE_STRIPES);
  for (guint i = 0; i < WEFT_RATE_STRIPES; i++)
    {
      g_mutex_init (&table->stripes[i].lock);
      table->stripes[i].slots = table->slots + (gsize) i * per_stripe;
      table->stripes[i].mask = per_stripe - 1;
    }
  return table;
}

static void
weft_rate_table_free (WeftRateTable *table)
{
  if (table->stripes != NULL)
    for (guint i = 0; i < WEFT_RATE_STRIPES; i++)
      g_mutex_clear (&table->stripes[i].lock);
  g_free (table->stripes);
  if (table->slots != NULL)
    munmap (table->slots, table->slots_size);
  g_free (table->identity);
  g_free (table);
}

WeftRateTable *
weft_rate_table_ref (WeftRateTable *table)
{
  g_mutex_lock (&weft_rate_registry_lock);
  table->refs++;
  g_mutex_unlock (&weft_rate_registry_lock);
  return table;
}

void
weft_rate_table_unref (WeftRateTable *table)
{
  gboolean last;

  g_mutex_lock (&weft_rate_registry_lock);
  last = --table->refs == 0;
  if (last && table->identity != NULL)
    {
      g_hash_table_remove (weft_rate_registry, table->identity);
      if (g_hash_table_size (weft_rate_registry) == 0)
        g_clear_pointer (&weft_rate_registry, g_hash_table_unref);
    }
  g_mutex_unlock (&weft_rate_registry_lock);
  if (last)
    weft_rate_table_free (table);
}

WeftRateTable *
weft_rate_table_lookup (const char *identity, guint64 interval_us, guint burst, guint max_keys)
{
  WeftRateTable *table;

  g_mutex_lock (&weft_rate_registry_lock);
  if (weft_rate_registry == NULL)
    weft_rate_registry = g_hash_table_new (g_str_hash, g_str_equal);
  table = g_hash_table_lookup (weft_rate_registry, identity);
  if (table != NULL)
    table->refs++;
  else if ((table = weft_rate_table_new (interval_us, burst, max_keys)) != NULL)
    {
      table->identity = g_strdup (identity);
      g_hash_table_insert (weft_rate_registry, table->identity, table);
    }
  g_mutex_unlock (&weft_rate_registry_lock);
  return table;
}
