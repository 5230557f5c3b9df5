/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The metrics plugin's pure parts: the peer metadata format, the series
 * cache and the Istio label values. */
#include "weft-metrics-plugin-private.h"

#include <string.h>

static void
test_peer_round_trip (void)
{
  WeftPeer peer = { 0 }, back;
  char text[WEFT_PEER_MAX];

  g_strlcpy (peer.workload, "reviews-v2", sizeof peer.workload);
  g_strlcpy (peer.ns, "bookinfo", sizeof peer.ns);
  g_strlcpy (peer.app, "reviews", sizeof peer.app);
  g_strlcpy (peer.version, "v2", sizeof peer.version);
  g_assert_true (weft_peer_format (&peer, text, sizeof text));
  g_assert_cmpstr (text, ==, "w=reviews-v2;n=bookinfo;a=reviews;v=v2");
  g_assert_true (weft_peer_parse (text, &back));
  g_assert_cmpstr (back.workload, ==, "reviews-v2");
  g_assert_cmpstr (back.ns, ==, "bookinfo");
  g_assert_cmpstr (back.service, ==, "");
  g_assert_cmpstr (back.version, ==, "v2");
}

static void
test_peer_refuses (void)
{
  WeftPeer peer;
  g_autofree char *long_value = g_strnfill (70, 'x');
  g_autofree char *too_long = g_strconcat ("w=", long_value, NULL);

  /* characters that could break a label or a header */
  g_assert_false (weft_peer_parse ("w=a\"b", &peer));
  g_assert_false (weft_peer_parse ("w=a b", &peer));
  g_assert_false (weft_peer_parse ("w=a,n=b", &peer));
  g_assert_cmpstr (peer.workload, ==, "");
  /* no workload, a pair without '=', a value longer than its field */
  g_assert_false (weft_peer_parse ("n=only", &peer));
  g_assert_false (weft_peer_parse ("w", &peer));
  g_assert_false (weft_peer_parse (too_long, &peer));
  g_assert_false (weft_peer_parse ("", &peer));
  g_assert_false (weft_peer_parse (NULL, &peer));
  /* keys a newer sidecar adds are skipped */
  g_assert_true (weft_peer_parse ("w=a;z=new;n=ns", &peer));
  g_assert_cmpstr (peer.ns, ==, "ns");
}

static void
test_cache (void)
{
  WeftMetricsCache *cache = weft_metrics_cache_new ();
  char key[32];
  int value;

  for (int i = 0; i < 500; i++)
    {
      int n = g_snprintf (key, sizeof key, "k%d", i);
      value = i * 3;
      weft_metrics_cache_insert (cache, key, (gsize) n, weft_metrics_hash (key, (gsize) n),
                                 &value, sizeof value);
    }
  g_assert_cmpuint (weft_metrics_cache_size (cache), ==, 500);
  for (int i = 0; i < 500; i++)
    {
      int n = g_snprintf (key, sizeof key, "k%d", i);
      int *found = weft_metrics_cache_lookup (cache, key, (gsize) n,
                                              weft_metrics_hash (key, (gsize) n));
      g_assert_nonnull (found);
      g_assert_cmpint (*found, ==, i * 3);
    }
  /* same hash, other bytes: a miss, not a false hit */
  g_assert_null (weft_metrics_cache_lookup (cache, "k1x", 3, weft_metrics_hash ("k1", 2)));
  weft_metrics_cache_free (cache);
}

static WeftMetricsConfig *
test_config (void)
{
  WeftMetricsConfig *c = g_new0 (WeftMetricsConfig, 1);

  c->cluster_domain = g_strdup ("cluster.local");
  g_strlcpy (c->self.workload, "b-v2", sizeof c->self.workload);
  g_strlcpy (c->self.ns, "demo", sizeof c->self.ns);
  g_strlcpy (c->self.service, "b", sizeof c->self.service);
  g_strlcpy (c->self.app, "b", sizeof c->self.app);
  return c;
}

static void
test_labels_inbound (void)
{
  g_autofree WeftMetricsConfig *c = test_config ();
  WeftMetricsInstance inst = { .config = c, .direction = WEFT_DIRECTION_INBOUND };
  WeftPeer caller;
  WeftIstioFacts f = { .peer = &caller, .status = 503,
                       .flags = WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE |
                                WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED };
  WeftIstioLabels l;

  g_assert_true (weft_peer_parse ("w=a-v1;n=other;a=a", &caller));
  weft_istio_labels_fill (&inst, &f, &l);
  g_assert_cmpstr (l.v[WEFT_IL_REPORTER], ==, "destination");
  g_assert_cmpstr (l.v[WEFT_IL_SOURCE_WORKLOAD], ==, "a-v1");
  g_assert_cmpstr (l.v[WEFT_IL_SOURCE_WORKLOAD_NAMESPACE], ==, "other");
  g_assert_cmpstr (l.v[WEFT_IL_SOURCE_CANONICAL_REVISION], ==, "latest");
  g_assert_cmpstr (l.v[WEFT_IL_SOURCE_VERSION], ==, "unknown");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_WORKLOAD], ==, "b-v2");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE], ==, "b.demo.svc.cluster.local");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE_NAME], ==, "b");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE_NAMESPACE], ==, "demo");
  g_assert_cmpstr (l.v[WEFT_IL_RESPONSE_CODE], ==, "503");
  g_assert_cmpstr (l.v[WEFT_IL_RESPONSE_FLAGS], ==, "UF,URX");
  g_assert_cmpstr (l.v[WEFT_IL_CONNECTION_SECURITY_POLICY], ==, "none");
  g_assert_cmpstr (l.v[WEFT_IL_SOURCE_PRINCIPAL], ==, "unknown");
  /* an mTLS peer */
  f.peer_principal = "spiffe://cluster.local/ns/other/sa/a";
  weft_istio_labels_fill (&inst, &f, &l);
  g_assert_cmpstr (l.v[WEFT_IL_SOURCE_PRINCIPAL], ==, "spiffe://cluster.local/ns/other/sa/a");
  g_assert_cmpstr (l.v[WEFT_IL_CONNECTION_SECURITY_POLICY], ==, "mutual_tls");
  g_free (c->cluster_domain);
}

static void
test_labels_outbound (void)
{
  g_autofree WeftMetricsConfig *c = test_config ();
  WeftMetricsInstance inst = { .config = c, .direction = WEFT_DIRECTION_OUTBOUND };
  WeftIstioFacts f = { .upstream = "reviews.bookinfo.svc.cluster.local", .status = 200 };
  WeftIstioLabels l;

  weft_istio_labels_fill (&inst, &f, &l);
  g_assert_cmpstr (l.v[WEFT_IL_REPORTER], ==, "source");
  g_assert_cmpstr (l.v[WEFT_IL_SOURCE_WORKLOAD], ==, "b-v2");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_WORKLOAD], ==, "unknown");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE], ==, "reviews.bookinfo.svc.cluster.local");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE_NAME], ==, "reviews");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE_NAMESPACE], ==, "bookinfo");
  g_assert_cmpstr (l.v[WEFT_IL_RESPONSE_FLAGS], ==, "-");
  g_assert_cmpstr (l.v[WEFT_IL_CONNECTION_SECURITY_POLICY], ==, "unknown");
  /* a bare upstream name takes its namespace from the callee's metadata */
  WeftPeer callee;
  g_assert_true (weft_peer_parse ("w=r-v1;n=shop", &callee));
  f.upstream = "reviews";
  f.peer = &callee;
  weft_istio_labels_fill (&inst, &f, &l);
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE_NAME], ==, "reviews");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE_NAMESPACE], ==, "shop");
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_WORKLOAD], ==, "r-v1");
  /* no upstream at all */
  f.upstream = NULL;
  weft_istio_labels_fill (&inst, &f, &l);
  g_assert_cmpstr (l.v[WEFT_IL_DESTINATION_SERVICE], ==, "unknown");
  g_free (c->cluster_domain);
}

static void
test_flags_format (void)
{
  char buf[WEFT_RESPONSE_FLAGS_MAX];

  g_assert_cmpstr (weft_response_flags_format (0, buf), ==, "-");
  g_assert_cmpstr (weft_response_flags_format (WEFT_RESPONSE_FLAG_RATE_LIMITED, buf), ==, "RL");
  g_assert_cmpstr (weft_response_flags_format (WEFT_RESPONSE_FLAG_UNAUTHORIZED, buf), ==, "UAEX");
  /* Envoy's order, whatever the bit order */
  g_assert_cmpstr (weft_response_flags_format (WEFT_RESPONSE_FLAG_DOWNSTREAM_DISCONNECT |
                                               WEFT_RESPONSE_FLAG_NO_HEALTHY_UPSTREAM, buf),
                   ==, "UH,DC");
  /* every flag at once fits */
  g_assert_cmpuint (strlen (weft_response_flags_format (0x3fff, buf)), <,
                    WEFT_RESPONSE_FLAGS_MAX);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics-plugin/peer/round-trip", test_peer_round_trip);
  g_test_add_func ("/metrics-plugin/peer/refuses", test_peer_refuses);
  g_test_add_func ("/metrics-plugin/cache", test_cache);
  g_test_add_func ("/metrics-plugin/labels/inbound", test_labels_inbound);
  g_test_add_func ("/metrics-plugin/labels/outbound", test_labels_outbound);
  g_test_add_func ("/metrics-plugin/flags-format", test_flags_format);
  return g_test_run ();
}
