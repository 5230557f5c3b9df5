/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * route-match: how the router's route table scales. Builds tables of 10,
 * 1,000 and 10,000 rules and reports ns per match (median of several runs)
 * for a rule near the end, then times loading 10,000 routes from weft YAML
 * (weft_config_load_data + weft_router_parse_settings + finish, without a
 * running weft).
 *
 *   build/bench/route-match            (or: meson test -C build --benchmark)
 *
 * Targets: a match at 10,000 rules costs at most 1.5x one at 10; loading
 * 10,000 routes takes at most 200 ms. --strict exits 1 when one is missed.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <glib.h>

#include "weft-config-private.h"
#include "weft-route-table-private.h"

#define BENCH_HOSTS 4
#define BENCH_RUNS 9
#define BENCH_LOAD_RUNS 5

static const char *const bench_hosts[] = {
  "host0.example", "host1.example", "host2.example", "host3.example",
};
static const char *const bench_hosts_port[] = {
  "host0.example:8080", "host1.example:8080", "host2.example:8080", "host3.example:8080",
};

typedef struct {
  const char *what;
  const char *host;
  char        target[64];
  const char *header;     /* x-user value, or NULL */
} BenchRequest;

static guint64
bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (guint64) ts.tv_sec * 1000000000u + (guint64) ts.tv_nsec;
}

static int
bench_cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
bench_median (double *v, guint n)
{
  qsort (v, n, sizeof *v, bench_cmp_double);
  return v[n / 2];
}

static const char *
bench_header (gpointer data, const char *name)
{
  return g_ascii_strcasecmp (name, "x-user") == 0 ? data : NULL;
}

/* rule i: on host i % 4; even ones an exact path, odd ones a prefix, every
 * fifth also needs a header; numbers padded so paths are the same length
 * at every size */
static WeftRouterConfig *
bench_config (guint n)
{
  WeftRouterConfig *config = weft_router_config_new (NULL);
  WeftVirtualHost *hosts[BENCH_HOSTS];
  g_autoptr(GError) error = NULL;

  for (guint h = 0; h < BENCH_HOSTS; h++)
    {
      g_autofree char *name = g_strdup_printf ("host%u.example", h);
      const char *domains[] = { name };
      hosts[h] = weft_router_config_vhost (config, name, domains, 1, NULL);
    }
  for (guint i = 0; i < n; i++)
    {
      WeftRouteAction *action = weft_route_action_new (NULL);
      WeftRouteRule *rule;
      g_autofree char *name = g_strdup_printf ("u%05u", i);

      action->name = g_strdup (name);
      g_ptr_array_add (action->dests, weft_route_dest_new (name, NULL, 0, 1, NULL));
      rule = weft_route_rule_new (action, NULL);
      weft_route_action_unref (action);
      rule->match.path.kind = i % 2 ? WEFT_STR_PREFIX : WEFT_STR_EXACT;
      rule->match.path.value = g_strdup_printf (i % 2 ? "/svc%05u/" : "/svc%05u/exact", i);
      if (i % 5 == 4)
        g_ptr_array_add (rule->match.headers,
                         weft_named_match_new ("x-user", WEFT_STR_PREFIX, "beta-"));
      weft_vhost_add_rule (hosts[i % BENCH_HOSTS], rule);
    }
  if (!weft_router_config_finish (config, &error))
    g_error ("finish: %s", error->message);
  return config;
}

/* ns per match of @req, median of BENCH_RUNS runs of @iters matches */
static double
bench_match (WeftRouterConfig *config, const BenchRequest *req, guint iters,
             const char *expect)
{
  g_autoptr(WeftRouteScratch) scratch = weft_route_scratch_new (config->table);
  double runs[BENCH_RUNS];
  WeftRouteView view;
  const WeftRouteRule *rule;
  volatile gsize sink = 0;

  weft_route_view_init (&view, "GET", req->host, req->target, bench_header,
                        (gpointer) req->header);
  rule = weft_route_table_match (config->table, scratch, &view, NULL);
  if (g_strcmp0 (rule ? rule->action->name : NULL, expect) != 0)
    g_error ("%s: matched %s, want %s", req->what, rule ? rule->action->name : "nothing",
             expect);
  for (guint r = 0; r < BENCH_RUNS; r++)
    {
      guint64 t0 = bench_now_ns ();
      for (guint i = 0; i < iters; i++)
        {
          /* a fresh view each time, as the plugin builds one per request */
          weft_route_view_init (&view, "GET", req->host, req->target, bench_header,
                                (gpointer) req->header);
          sink += (gsize) weft_route_table_match (config->table, scratch, &view, NULL);
        }
      runs[r] = (double) (bench_now_ns () - t0) / iters;
    }
  (void) sink;
  return bench_median (runs, BENCH_RUNS);
}

/* the requests for a table of @n rules: near its end */
static guint
bench_requests (guint n, BenchRequest *reqs, const char **expect, char names[][16])
{
  guint last_prefix = n - 1;      /* odd: a prefix rule */
  guint last_exact = n - 2;       /* even: an exact rule */
  guint k = 0;

  /* n - 1 is a rule that also needs x-user, at every size */
  reqs[k] = (BenchRequest) { "prefix, last rule", bench_hosts_port[last_prefix % 4], "",
                             "beta-7" };
  g_snprintf (reqs[k].target, sizeof reqs[k].target, "/svc%05u/items/42?page=2", last_prefix);
  g_snprintf (names[k], 16, "u%05u", last_prefix);
  expect[k] = names[k];
  k++;
  reqs[k] = (BenchRequest) { "exact, near the end", bench_hosts[last_exact % 4], "", NULL };
  g_snprintf (reqs[k].target, sizeof reqs[k].target, "/svc%05u/exact?page=2", last_exact);
  g_snprintf (names[k], 16, "u%05u", last_exact);
  expect[k] = names[k];
  k++;
  reqs[k] = (BenchRequest) { "no rule matches", "host1.example", "/nothing/here/at/all/12345",
                             NULL };
  expect[k] = NULL;
  k++;
  return k;
}

typedef struct {
  guint  n;
  double ns[3];
  double mean;
} BenchResult;

static void
bench_size (guint n, BenchResult *res)
{
  WeftRouterConfig *config = bench_config (n);
  BenchRequest reqs[3];
  const char *expect[3];
  char names[3][16];
  guint k = bench_requests (n, reqs, expect, names);

  res->n = n;
  res->mean = 0;
  for (guint i = 0; i < k; i++)
    {
      res->ns[i] = bench_match (config, &reqs[i], 200000, expect[i]);
      res->mean += res->ns[i] / k;
    }
  weft_router_config_free (config);
}

/* weft YAML for @n routes over 4 virtual hosts */
static char *
bench_yaml (guint n)
{
  GString *s = g_string_new ("router:\n  virtual_hosts:\n");

  for (guint h = 0; h < BENCH_HOSTS; h++)
    {
      g_string_append_printf (s, "    - name: host%u\n      domains: [host%u.example]\n"
                                 "      routes:\n", h, h);
      for (guint i = h; i < n; i += BENCH_HOSTS)
        g_string_append_printf (s, "        - match: {path: {%s: /svc%05u/%s}, method: GET}\n"
                                   "          upstream: u%05u\n"
                                   "          timeout: 2s\n",
                                i % 2 ? "prefix" : "exact", i, i % 2 ? "" : "exact", i);
    }
  return g_string_free (s, FALSE);
}

typedef struct {
  double yaml_ms;      /* weft_config_load_data */
  double parse_ms;     /* weft_router_parse_settings */
  double finish_ms;    /* weft_router_config_finish */
  double total_ms;
} BenchLoad;

/* ms to load, parse and finish @n routes, medians of a few runs */
static void
bench_load (guint n, gsize *yaml_len, BenchLoad *out)
{
  g_autofree char *yaml = bench_yaml (n);
  double yaml_ms[BENCH_LOAD_RUNS], parse_ms[BENCH_LOAD_RUNS], finish_ms[BENCH_LOAD_RUNS];
  double total_ms[BENCH_LOAD_RUNS];

  *yaml_len = strlen (yaml);
  for (guint r = 0; r < BENCH_LOAD_RUNS; r++)
    {
      g_autoptr(GError) error = NULL;
      guint64 t0 = bench_now_ns (), t1, t2, t3;
      g_autoptr(WeftConfig) weft = weft_config_load_data ("bench.yaml", yaml, *yaml_len, &error);
      WeftRouterConfig *config = weft_router_config_new (NULL);

      t1 = bench_now_ns ();
      if (weft == NULL ||
          !weft_router_parse_settings (config,
                                       g_hash_table_lookup (weft->plugin_nodes, "router"),
                                       &error))
        g_error ("load: %s", error->message);
      t2 = bench_now_ns ();
      if (!weft_router_config_finish (config, &error))
        g_error ("finish: %s", error->message);
      t3 = bench_now_ns ();
      g_assert_cmpuint (weft_route_table_get_n_rules (config->table), ==, n);
      yaml_ms[r] = (double) (t1 - t0) / 1e6;
      parse_ms[r] = (double) (t2 - t1) / 1e6;
      finish_ms[r] = (double) (t3 - t2) / 1e6;
      total_ms[r] = (double) (t3 - t0) / 1e6;
      weft_router_config_free (config);
    }
  out->yaml_ms = bench_median (yaml_ms, BENCH_LOAD_RUNS);
  out->parse_ms = bench_median (parse_ms, BENCH_LOAD_RUNS);
  out->finish_ms = bench_median (finish_ms, BENCH_LOAD_RUNS);
  out->total_ms = bench_median (total_ms, BENCH_LOAD_RUNS);
}

int
main (int argc, char **argv)
{
  static const guint sizes[] = { 10, 1000, 10000 };
  static const char *const what[] = { "prefix, last rule", "exact, near the end",
                                      "no rule matches" };
  BenchResult res[G_N_ELEMENTS (sizes)];
  gboolean strict = argc > 1 && g_str_equal (argv[1], "--strict");
  gsize yaml_len = 0;
  BenchLoad load;
  double ratio;

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    bench_size (sizes[i], &res[i]);
  bench_load (10000, &yaml_len, &load);
  ratio = res[2].mean / res[0].mean;

  printf ("ns per match (median of %d runs of 200000 matches)\n\n", BENCH_RUNS);
  printf ("| rules | %s | %s | %s | mean |\n|---|---|---|---|---|\n", what[0], what[1], what[2]);
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    printf ("| %u | %.1f | %.1f | %.1f | %.1f |\n", res[i].n, res[i].ns[0], res[i].ns[1],
            res[i].ns[2], res[i].mean);
  printf ("\nmean at 10,000 / mean at 10: %.2fx (target <= 1.5x): %s\n", ratio,
          ratio <= 1.5 ? "met" : "MISSED");
  printf ("load+parse+finish of 10,000 routes (%zu bytes of YAML, median of %d): %.1f ms "
          "(target <= 200 ms): %s\n", yaml_len, BENCH_LOAD_RUNS, load.total_ms,
          load.total_ms <= 200 ? "met" : "MISSED");
  printf ("  YAML to nodes %.1f ms, router settings %.1f ms, finish (regexes, index) %.1f ms\n",
          load.yaml_ms, load.parse_ms, load.finish_ms);
  return strict && (ratio > 1.5 || load.total_ms > 200) ? 1 : 0;
}
