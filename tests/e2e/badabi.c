/* SPDX-License-Identifier: LGPL-2.1-or-later
 * badabi: a plugin built for another ABI; the loader must refuse it. */
#include <weft/plugin.h>

static gpointer
badabi_config_new (WeftPluginContext *ctx, const WeftNode *node, GError **error)
{
  (void) ctx;
  (void) node;
  (void) error;
  return NULL;
}

static void
badabi_config_free (gpointer data)
{
  (void) data;
}

static const WeftPluginDescriptor badabi_descriptor = {
  .abi_version = WEFT_PLUGIN_ABI_VERSION + 98,
  .struct_size = sizeof (WeftPluginDescriptor),
  .name = "badabi",
  .config_new = badabi_config_new,
  .config_free = badabi_config_free,
};

WEFT_PLUGIN_DEFINE (badabi_descriptor)
