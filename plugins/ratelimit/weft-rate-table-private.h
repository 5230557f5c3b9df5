/* weft-rate-table-private.h: token buckets shared by every worker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * WeftRateTable:
 *
 * The buckets of one limit: a token bucket of @burst tokens refilled at
 * one token per @interval_us, kept as GCRA (one "theoretical arrival time"
 * per key), so a check is a compare and a store. An unkeyed table is one
 * atomic; a keyed one is a fixed open-addressed table split into stripes,
 * each behind a short mutex, so a check never allocates. When a stripe's
 * probe window holds only live buckets of other keys, the check falls back
 * to one shared overflow bucket (counted), never to "unlimited".
 *
 * Shared by all workers: "10/s" is 10/s for the whole process.
 */
typedef struct _WeftRateTable WeftRateTable;

typedef struct {
  gboolean admitted;
  guint    remaining;     /* tokens left after this request */
  guint64  retry_us;      /* refused: wait this long for a token */
  guint64  reset_us;      /* until the bucket is full again */
  gboolean overflow;      /* the key did not fit and used the overflow bucket */
} WeftRateVerdict;

/* @max_keys = 0: one bucket, no key; NULL when the memory cannot be had */
WeftRateTable *weft_rate_table_new   (guint64 interval_us, guint burst, guint max_keys);
WeftRateTable *weft_rate_table_ref   (WeftRateTable *table);
void           weft_rate_table_unref (WeftRateTable *table);
/* takes a token from the bucket of @key (ignored when unkeyed) at @now_us */
void           weft_rate_table_take  (WeftRateTable *table, const char *key, gsize key_len,
                                      gint64 now_us, WeftRateVerdict *verdict);
/* the GCRA step on its own, as Redis runs it too: new TAT, or -1 if refused */
gint64         weft_rate_gcra        (gint64 tat, gint64 now_us, guint64 interval_us,
                                      guint burst, WeftRateVerdict *verdict);

/**
 * weft_rate_table_lookup:
 * @identity: the limit's name and every parameter that shapes its buckets
 *
 * The table of the limit with @identity when a live configuration has it
 * (a reload keeps buckets whose key and limit did not change), or a new one.
 * Returns a reference, or NULL when the memory cannot be had.
 */
WeftRateTable *weft_rate_table_lookup (const char *identity, guint64 interval_us, guint burst,
                                       guint max_keys);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftRateTable, weft_rate_table_unref)

G_END_DECLS
