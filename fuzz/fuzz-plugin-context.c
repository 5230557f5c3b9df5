/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the fuzz targets that compile plugin sources need from weft's core,
 * without the core: a plugin context that knows the upstreams of a parsed
 * WeftConfig and makes DNS upstreams by name (no resolver, no sockets), so
 * weft_router_config_finish() runs its whole upstream and policy code, and
 * a weft_log() that formats its line and drops it (a bad format argument
 * still shows under ASan/UBSan). The WeftRequest accessors are never called
 * by the targets (no request exists); they trap if one is.
 */

#include "fuzz-plugin-context.h"

#include <string.h>

struct _WeftUpstream {
  char    *name;
  char    *host;
  guint16  port;
  guint    n_configured;
};

struct _WeftRetryPolicy {
  WeftRetrySpec spec;
};

struct _WeftPluginContext {
  const WeftConfig *config;
  GHashTable       *upstreams;   /* name -> WeftUpstream* */
  GPtrArray        *retry_policies;
};

static void
weft_fuzz_upstream_free (gpointer data)
{
  WeftUpstream *up = data;

  g_free (up->name);
  g_free (up->host);
  g_free (up);
}

static WeftUpstream *
weft_fuzz_upstream_add (WeftPluginContext *ctx, const char *name, const char *host,
                        guint16 port)
{
  WeftUpstream *up = g_new0 (WeftUpstream, 1);

  up->name = g_strdup (name);
  up->host = g_strdup (host);
  up->port = port;
  g_hash_table_replace (ctx->upstreams, up->name, up);
  return up;
}

WeftPluginContext *
weft_fuzz_context_new (const WeftConfig *config)
{
  WeftPluginContext *ctx = g_new0 (WeftPluginContext, 1);

  ctx->config = config;
  ctx->upstreams = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          weft_fuzz_upstream_free);
  ctx->retry_policies = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; config->upstreams != NULL && i < config->upstreams->len; i++)
    {
      const WeftUpstreamConfig *uc = config->upstreams->pdata[i];
      weft_fuzz_upstream_add (ctx, uc->name, NULL, 0);
    }
  return ctx;
}

void
weft_fuzz_context_free (WeftPluginContext *ctx)
{
  if (ctx == NULL)
    return;
  g_hash_table_unref (ctx->upstreams);
  g_ptr_array_unref (ctx->retry_policies);
  g_free (ctx);
}

WeftUpstream *
weft_plugin_context_lookup_upstream (WeftPluginContext *ctx, const char *name)
{
  g_assert (ctx != NULL && name != NULL);
  return g_hash_table_lookup (ctx->upstreams, name);
}

WeftUpstream *
weft_plugin_context_add_upstream (WeftPluginContext *ctx, const char *name, const char *host,
                                  guint16 port, GError **error)
{
  WeftUpstream *up = weft_plugin_context_lookup_upstream (ctx, name);

  g_assert (host != NULL);
  if (up != NULL)
    return up;
  /* what the real one refuses before it resolves anything */
  if (host[0] == '\0')
    {
      g_set_error_literal (error, WEFT_ERROR, WEFT_ERROR_CONFIG, "empty host");
      return NULL;
    }
  return weft_fuzz_upstream_add (ctx, name, host, port);
}

gboolean
weft_plugin_context_configure_upstream (WeftPluginContext *ctx, WeftUpstream *upstream,
                                        const WeftLbSpec *lb, const WeftOutlierSpec *outlier,
                                        const WeftPoolSpec *pool, GError **error)
{
  /* the upstream must be one this context gave out */
  g_assert (g_hash_table_lookup (ctx->upstreams, upstream->name) == upstream);
  upstream->n_configured++;
  return TRUE;
}

WeftRetryPolicy *
weft_plugin_context_new_retry_policy (WeftPluginContext *ctx, const WeftRetrySpec *spec)
{
  WeftRetryPolicy *policy = g_new0 (WeftRetryPolicy, 1);

  policy->spec = *spec;
  g_ptr_array_add (ctx->retry_policies, policy);
  return policy;
}

const char *
weft_plugin_context_get_node_field (WeftPluginContext *ctx, const char *field)
{
  return g_hash_table_lookup (ctx->config->node_fields, field);
}

void
weft_log (WeftLogLevel level, const char *domain, const char *format, ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);
  g_assert (line != NULL);
}

/* the targets never make a request: these only satisfy the linker */
#define WEFT_FUZZ_NO_REQUEST(ret, name, ...) \
  ret name (__VA_ARGS__) { __builtin_trap (); }

WEFT_FUZZ_NO_REQUEST (gpointer, weft_request_alloc, WeftRequest *req, gsize size)
WEFT_FUZZ_NO_REQUEST (const char *, weft_request_get_authority, WeftRequest *req)
WEFT_FUZZ_NO_REQUEST (guint16, weft_request_get_destination_port, WeftRequest *req)
WEFT_FUZZ_NO_REQUEST (const char *, weft_request_get_header, WeftRequest *req, const char *name)
WEFT_FUZZ_NO_REQUEST (const char *, weft_request_get_method, WeftRequest *req)
WEFT_FUZZ_NO_REQUEST (const char *, weft_request_get_path, WeftRequest *req)
WEFT_FUZZ_NO_REQUEST (const struct sockaddr *, weft_request_get_peer_address, WeftRequest *req,
                      socklen_t *len)
WEFT_FUZZ_NO_REQUEST (const char *, weft_request_get_peer_identity, WeftRequest *req)
