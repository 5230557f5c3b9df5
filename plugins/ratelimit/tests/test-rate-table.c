/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The shared token buckets: GCRA arithmetic, exactness under threads,
 * keys, the overflow bucket, the reload registry, and the settings.
 */
#include <string.h>
#include <glib.h>

#include "weft-config-private.h"
#include "weft-ratelimit-private.h"

#define SEC G_USEC_PER_SEC

static guint
take_n (WeftRateTable *t, const char *key, guint n, gint64 now)
{
  guint admitted = 0;

  for (guint i = 0; i < n; i++)
    {
      WeftRateVerdict v;
      weft_rate_table_take (t, key, strlen (key), now, &v);
      admitted += v.admitted;
    }
  return admitted;
}

/* a full bucket gives @burst at once, then one token per interval */
static void
test_gcra_burst_then_rate (void)
{
  g_autoptr(WeftRateTable) t = weft_rate_table_new (SEC / 10, 5, 0);
  gint64 now = 1000 * SEC;
  WeftRateVerdict v;

  g_assert_cmpuint (take_n (t, "", 20, now), ==, 5);
  /* 100 ms later exactly one more token */
  g_assert_cmpuint (take_n (t, "", 20, now + SEC / 10), ==, 1);
  /* over ten seconds at most rate x time, whatever the demand */
  {
    guint admitted = 0;
    for (gint64 ms = 200; ms <= 10200; ms += 7)
      admitted += take_n (t, "", 3, now + ms * 1000);
    g_assert_cmpuint (admitted, >=, 99);
    g_assert_cmpuint (admitted, <=, 101);
  }
  take_n (t, "", 20, now + 10200 * 1000);
  weft_rate_table_take (t, "", 0, now + 10200 * 1000, &v);
  g_assert_false (v.admitted);
  g_assert_cmpuint (v.retry_us, >, 0);
  g_assert_cmpuint (v.retry_us, <=, SEC / 10);
}

static void
test_gcra_remaining (void)
{
  WeftRateVerdict v;
  gint64 now = 50 * SEC;
  gint64 tat = weft_rate_gcra (0, now, SEC, 3, &v);

  g_assert_true (v.admitted);
  g_assert_cmpuint (v.remaining, ==, 2);
  tat = weft_rate_gcra (tat, now, SEC, 3, &v);
  g_assert_cmpuint (v.remaining, ==, 1);
  tat = weft_rate_gcra (tat, now, SEC, 3, &v);
  g_assert_cmpuint (v.remaining, ==, 0);
  g_assert_cmpint (weft_rate_gcra (tat, now, SEC, 3, &v), ==, -1);
  g_assert_false (v.admitted);
  g_assert_cmpuint (v.retry_us, ==, SEC);
  g_assert_cmpuint (v.reset_us, ==, 3 * SEC);
}

typedef struct {
  WeftRateTable *table;
  const char    *key;
  gint64         now;
  guint          admitted;
} Hammer;

static gpointer
hammer (gpointer data)
{
  Hammer *h = data;

  h->admitted = take_n (h->table, h->key, 100000, h->now);
  return NULL;
}

/* eight threads at once on one bucket: exactly the burst, never more */
static void
test_exact_across_threads (gconstpointer keyed)
{
  g_autoptr(WeftRateTable) t = weft_rate_table_new (SEC, 1000, keyed ? 1024 : 0);
  Hammer h[8];
  GThread *threads[8];
  guint total = 0;

  for (guint i = 0; i < 8; i++)
    {
      h[i] = (Hammer) { t, "caller-a", 7 * SEC, 0 };
      threads[i] = g_thread_new ("hammer", hammer, &h[i]);
    }
  for (guint i = 0; i < 8; i++)
    {
      g_thread_join (threads[i]);
      total += h[i].admitted;
    }
  g_assert_cmpuint (total, ==, 1000);
}

static void
test_keys_are_separate (void)
{
  g_autoptr(WeftRateTable) t = weft_rate_table_new (SEC, 2, 100);
  gint64 now = 9 * SEC;

  g_assert_cmpuint (take_n (t, "127.0.0.2", 5, now), ==, 2);
  g_assert_cmpuint (take_n (t, "127.0.0.3", 5, now), ==, 2);
  g_assert_cmpuint (take_n (t, "", 5, now), ==, 2);
  g_assert_cmpuint (take_n (t, "127.0.0.2", 5, now + SEC), ==, 1);
}

/* more live keys than the table holds: the rest share one bucket, and a
 * full (idle) bucket's slot is reused */
static void
test_overflow_and_reuse (void)
{
  g_autoptr(WeftRateTable) t = weft_rate_table_new (SEC, 1, 1);
  gint64 now = 11 * SEC;
  guint overflowed = 0, admitted = 0;

  for (guint i = 0; i < 5000; i++)
    {
      char key[32];
      WeftRateVerdict v;
      g_snprintf (key, sizeof key, "k%u", i);
      weft_rate_table_take (t, key, strlen (key), now, &v);
      overflowed += v.overflow;
      admitted += v.admitted;
    }
  g_assert_cmpuint (overflowed, >, 0);
  /* every key that overflowed shared one bucket of one token */
  g_assert_cmpuint (admitted, ==, 5000 - overflowed + 1);
  /* two seconds on every bucket is full again: new keys find room */
  g_assert_cmpuint (take_n (t, "fresh", 1, now + 2 * SEC), ==, 1);
}

static void
test_registry_keeps_buckets (void)
{
  WeftRateTable *a = weft_rate_table_lookup ("a|100000|5|0||0", SEC / 10, 5, 0);
  WeftRateTable *b = weft_rate_table_lookup ("a|100000|5|0||0", SEC / 10, 5, 0);
  WeftRateTable *c = weft_rate_table_lookup ("a|50000|5|0||0", SEC / 20, 5, 0);

  g_assert_true (a == b);
  g_assert_true (a != c);
  g_assert_cmpuint (take_n (a, "", 10, 3 * SEC), ==, 5);
  g_assert_cmpuint (take_n (b, "", 10, 3 * SEC), ==, 0);
  weft_rate_table_unref (a);
  weft_rate_table_unref (b);
  /* all references gone: the next lookup starts full */
  a = weft_rate_table_lookup ("a|100000|5|0||0", SEC / 10, 5, 0);
  g_assert_cmpuint (take_n (a, "", 10, 3 * SEC), ==, 5);
  weft_rate_table_unref (a);
  weft_rate_table_unref (c);
}

static gsize
rss_anon_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, "RssAnon:");
  g_assert_nonnull (line);
  return (gsize) g_ascii_strtoull (line + strlen ("RssAnon:"), NULL, 10);
}

/* a keyed limit reserves room for max_keys buckets, but an idle sidecar
 * must not pay for it: only pages that keys land on become memory */
static void
test_idle_table_costs_no_memory (void)
{
  gsize before = rss_anon_kib ();
  WeftRateTable *tables[4];

  for (guint i = 0; i < G_N_ELEMENTS (tables); i++)
    tables[i] = weft_rate_table_new (SEC, 10, 65536);
  g_test_message ("RssAnon %zu KiB -> %zu KiB for 4 tables of 65536 keys", before,
                  rss_anon_kib ());
  g_assert_cmpuint (rss_anon_kib (), <, before + 1024);
  g_assert_cmpuint (take_n (tables[0], "one key", 3, SEC), ==, 3);
  for (guint i = 0; i < G_N_ELEMENTS (tables); i++)
    weft_rate_table_unref (tables[i]);
}

static void
test_rate_parse (void)
{
  guint64 count, period;

  g_assert_true (weft_rate_parse ("10/s", &count, &period));
  g_assert_cmpuint (count, ==, 10);
  g_assert_cmpuint (period, ==, 1);
  g_assert_true (weft_rate_parse ("600/m", &count, &period));
  g_assert_cmpuint (period, ==, 60);
  g_assert_true (weft_rate_parse ("5/10s", &count, &period));
  g_assert_cmpuint (period, ==, 10);
  g_assert_true (weft_rate_parse ("1000/hour", &count, &period));
  g_assert_cmpuint (period, ==, 3600);
  g_assert_false (weft_rate_parse ("0/s", &count, &period));
  g_assert_false (weft_rate_parse ("10", &count, &period));
  g_assert_false (weft_rate_parse ("10/fortnight", &count, &period));
  g_assert_false (weft_rate_parse ("-1/s", &count, &period));
  g_assert_false (weft_rate_parse ("ten/s", &count, &period));
}

static char *
settings_error (const char *yaml)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) weft = weft_config_load_data ("limits.yaml", yaml, strlen (yaml), &error);
  g_autoptr(WeftRateConfig) config = NULL;

  g_assert_no_error (error);
  config = weft_rate_config_parse (g_hash_table_lookup (weft->plugin_nodes, "ratelimit"), &error);
  g_assert_null (config);
  g_assert_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG);
  g_test_message ("%s", error->message);
  return g_strdup (error->message);
}

static void
test_settings_errors (void)
{
  static const struct { const char *yaml; const char *want; } cases[] = {
    { "ratelimit:\n  limits:\n    - name: a\n      rate: 10/fortnight\n",
      "limits.yaml:4:13: 'rate' must be" },
    { "ratelimit:\n  limits:\n    - name: a\n      rate: 10/s\n      key: cookie\n",
      "limits.yaml:5:12: 'key' must be" },
    { "ratelimit:\n  limits:\n    - rate: 10/s\n", "limits.yaml:3:7: a limit needs a 'name'" },
    { "ratelimit:\n  limits:\n    - name: a\n      rate: 1/s\n      brust: 3\n",
      "limits.yaml:5:7:" },
    { "ratelimit:\n  limits:\n    - name: a\n      rate: 1/s\n    - name: a\n      rate: 2/s\n",
      "limits.yaml:5:7: two limits are named 'a'" },
    { "ratelimit:\n  limits:\n    - name: a\n      rate: 1/s\n      global: true\n",
      "limit 'a' is global but 'ratelimit.redis' is not set" },
    { "ratelimit:\n  redis: {address: 127.0.0.1:6379, failure_mode: maybe}\n",
      "limits.yaml:2:50: 'failure_mode' must be open or closed" },
    { "ratelimit:\n  limits:\n    - name: a\n      rate: 1/s\n      burst: 0\n",
      "limits.yaml:5:14: 'burst' must be between 1" },
    { "ratelimit:\n  limits:\n    - name: a\n      rate: 1/s\n      match:\n"
      "        from: [{source: {requestPrincipals: [x]}}]\n",
      "requestPrincipals" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *msg = settings_error (cases[i].yaml);
      g_assert_nonnull (strstr (msg, cases[i].want));
    }
}

static void
test_settings_defaults (void)
{
  const char *yaml = "ratelimit:\n  limits:\n    - name: a\n      rate: 10/s\n"
                     "    - name: b\n      rate: 3/m\n      burst: 7\n      key: header:X-User\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftConfig) weft = weft_config_load_data ("ok.yaml", yaml, strlen (yaml), &error);
  g_autoptr(WeftRateConfig) config =
    weft_rate_config_parse (g_hash_table_lookup (weft->plugin_nodes, "ratelimit"), &error);
  WeftRateLimit *a, *b;

  g_assert_no_error (error);
  a = config->limits->pdata[0];
  b = config->limits->pdata[1];
  g_assert_cmpuint (a->burst, ==, 10);
  g_assert_cmpuint (a->interval_us, ==, SEC / 10);
  g_assert_cmpint (a->key, ==, WEFT_RATE_KEY_NONE);
  g_assert_cmpuint (a->max_keys, ==, 0);
  g_assert_cmpuint (b->burst, ==, 7);
  g_assert_cmpuint (b->interval_us, ==, 20 * SEC);
  g_assert_cmpint (b->key, ==, WEFT_RATE_KEY_HEADER);
  g_assert_cmpstr (b->header, ==, "x-user");
  g_assert_true (config->fail_open);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rate-table/gcra-burst-then-rate", test_gcra_burst_then_rate);
  g_test_add_func ("/rate-table/gcra-remaining", test_gcra_remaining);
  g_test_add_data_func ("/rate-table/exact-across-threads", GINT_TO_POINTER (0),
                        test_exact_across_threads);
  g_test_add_data_func ("/rate-table/exact-across-threads-keyed", GINT_TO_POINTER (1),
                        test_exact_across_threads);
  g_test_add_func ("/rate-table/keys-are-separate", test_keys_are_separate);
  g_test_add_func ("/rate-table/overflow-and-reuse", test_overflow_and_reuse);
  g_test_add_func ("/rate-table/registry-keeps-buckets", test_registry_keeps_buckets);
  g_test_add_func ("/rate-table/idle-table-costs-no-memory", test_idle_table_costs_no_memory);
  g_test_add_func ("/ratelimit/rate-parse", test_rate_parse);
  g_test_add_func ("/ratelimit/settings-errors", test_settings_errors);
  g_test_add_func ("/ratelimit/settings-defaults", test_settings_defaults);
  return g_test_run ();
}
