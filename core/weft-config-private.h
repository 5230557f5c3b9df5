/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftConfig: the parsed, validated configuration (pure data, no sockets, no
 * plugins). Built on the main thread; immutable once loaded.
 */
#pragma once

#include <weft/plugin.h>
#include "weft-node-private.h"

G_BEGIN_DECLS

typedef struct {
  guint64 connect_ms;         /* upstream connect; default 5000 */
  guint64 request_header_ms;  /* whole request head must arrive (slowloris); default 10000 */
  guint64 client_idle_ms;     /* idle keep-alive client connection; default 60000 */
  guint64 request_body_ms;    /* request body (slow POST): the first bytes, then extended by
                               * one second per limits.min_request_body_rate bytes; default 20000 */
  guint64 upstream_idle_ms;   /* pooled idle upstream connection; default 4000 */
  guint64 request_ms;         /* request start to response head; 0 = none; default 15000 */
  guint64 response_idle_ms;   /* after the response head: no byte moved for this long closes
                               * the exchange (a stalled upstream or client); default 300000 */
  guint64 drain_ms;           /* drain on shutdown or listener removal; default 30000 */
} WeftTimeouts;

typedef struct {
  guint   max_request_line;   /* default 8192 */
  guint   max_head;           /* default 16384, at most 65536 */
  guint   max_headers;        /* default 100, at most 128 */
  guint64 max_body;           /* 0 = unlimited; else 413 */
  guint64 min_body_rate;      /* bytes/s that extend timeouts.request_body by 1 s; 0 = never; default 500 */
} WeftLimits;

/* inbound mTLS of a listener */
typedef enum {
  WEFT_TLS_MODE_DISABLE,      /* plaintext only (the default) */
  WEFT_TLS_MODE_PERMISSIVE,   /* mTLS or plaintext, told apart by the first byte */
  WEFT_TLS_MODE_STRICT,       /* mTLS with a client certificate only */
} WeftTlsMode;

/* the workload's certificate, key and trust bundle: the top-level tls: */
typedef struct {
  char          *cert;        /* absolute paths (relative ones resolve against the config file) */
  char          *key;
  char          *bundle;
  guint64        expiry_warning_ms;  /* 0 = a quarter of the leaf's lifetime */
  const WeftNode *node;
} WeftTlsConfig;

/* a listener's mode for connections to one original destination port */
typedef struct {
  guint16        port;
  WeftTlsMode    mode;
} WeftTlsPortMode;

typedef struct {
  char          *host;        /* IP literal or DNS name, without brackets */
  guint16        port;
  gboolean       is_ip;
  const WeftNode *node;
} WeftEndpointConfig;

typedef struct {
  char          *name;
  GPtrArray     *endpoints;        /* WeftEndpointConfig* */
  guint64        dns_refresh_ms;   /* default 5000 */
  guint          unhealthy_after;  /* consecutive connect failures; default 3 */
  guint64        unhealthy_backoff_ms; /* default 5000; doubles per failed retry, max 60000 */
  guint64        connect_ms;       /* 0 = the global timeouts.connect */
  /* traffic policy: load_balancer, outlier_detection, connection_pool;
   * zeroes are the defaults (round robin, no outlier detection, no limits).
   * pool.connect_timeout_ms stays 0: timeouts.connect is connect_ms. */
  WeftLbSpec     lb;               /* lb.hash_key points at hash_key */
  char          *hash_key;
  WeftOutlierSpec outlier;
  WeftPoolSpec   pool;
  gboolean       tls;              /* tls.mode ISTIO_MUTUAL: originate mTLS */
  GStrv          tls_spiffe_ids;   /* the server's allowed IDs; NULL = any of our trust domain */
  char          *tls_sni;
  guint32        tls_tag;          /* hash of the TLS settings: pool keys keep them apart */
  const WeftNode *node;
} WeftUpstreamConfig;

typedef struct {
  char          *name;
  char          *address;          /* as written, "127.0.0.1:15006" or "[::1]:80" */
  char          *host;             /* IP literal */
  guint16        port;
  WeftDirection  direction;        /* default inbound */
  char          *upstream;         /* default upstream name, may be NULL */
  GPtrArray     *plugins;          /* char*, in order */
  GHashTable    *plugin_nodes;     /* plugin name -> const WeftNode* (other keys of the listener) */
  WeftTimeouts   timeouts;         /* global ones overridden by the listener's timeouts: */
  WeftTlsMode    tls_mode;
  GArray        *tls_ports;        /* WeftTlsPortMode; NULL = tls_mode for every port */
  guint          max_connections;  /* open client connections, all workers; 0 = no limit */
  const WeftNode *node;
} WeftListenerConfig;

/* "STRICT", "PERMISSIVE" or "DISABLE", as the config spells them */
const char *weft_tls_mode_to_string (WeftTlsMode mode);

/* the mode for a connection whose original destination port is @port */
WeftTlsMode weft_listener_config_tls_mode (const WeftListenerConfig *listener, guint16 port);

typedef struct {
  char          *path;
  char          *sha256;
} WeftConfigSource;

typedef struct {
  const WeftNode *root;
  char          *api_version;
  char          *kind;
  char          *name;             /* metadata.name, may be NULL */
} WeftConfigDocument;

typedef struct {
  GPtrArray     *files;            /* WeftNodeFile*, owns every node */
  GPtrArray     *sources;          /* WeftConfigSource* in read order */
  char          *admin_address;    /* default 127.0.0.1:15000 */
  guint          workers;          /* 0 = one per CPU */
  GPtrArray     *plugin_dirs;      /* char*; empty = the default */
  WeftTimeouts   timeouts;
  WeftLimits     limits;
  GHashTable    *node_fields;      /* "service", "workload", "namespace", "pod",
                                      "service_account", "trust_domain", "cluster",
                                      "label.<k>" -> value, from node: and the env */
  GPtrArray     *listeners;        /* WeftListenerConfig* */
  GPtrArray     *upstreams;        /* WeftUpstreamConfig* */
  GHashTable    *plugin_nodes;     /* unknown top-level key -> const WeftNode* (a plugin's settings) */
  GPtrArray     *documents;        /* WeftConfigDocument*: documents with apiVersion and kind */
  WeftTlsConfig *tls;              /* NULL: no tls: section */
} WeftConfig;

/*
 * Loads @path: a YAML file, or a directory whose *.yaml and *.yml files
 * (following symlinks, skipping names that start with a dot) are read in
 * name order. All plain documents merge into one config before references
 * are resolved. On failure every problem found is in the message, one per
 * line, each "file:line:col: message".
 */
WeftConfig *weft_config_load      (const char *path, GError **error);
/* same from in-memory YAML (tests, fuzzing) */
WeftConfig *weft_config_load_data (const char *display_name, const char *data, gsize len,
                                   GError **error);
void        weft_config_free      (WeftConfig *config);

/*
 * The files weft_config_load (@path) would read, each with its SHA-256,
 * without parsing them: enough to tell whether anything changed.
 */
GPtrArray  *weft_config_read_sources (const char *path, GError **error);
/*
 * Frees the YAML trees once the generation is built from @config: every
 * node pointer in it becomes NULL, the plugin settings and documents are
 * gone. What is left is the parsed data; positions are only needed while
 * loading.
 */
void        weft_config_drop_nodes    (WeftConfig *config);

WeftUpstreamConfig *weft_config_find_upstream (WeftConfig *config, const char *name);
/* an upstream a plugin adds: one endpoint, resolved by DNS unless @host is
 * an IP; @port 0 = the port of each request */
WeftUpstreamConfig *weft_config_add_upstream  (WeftConfig *config, const char *name,
                                               const char *host, guint16 port);

/* "127.0.0.1:80", "[::1]:80" -> host and port; FALSE when malformed */
gboolean    weft_config_split_host_port (const char *address, char **host, guint16 *port);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftConfig, weft_config_free)

G_END_DECLS
