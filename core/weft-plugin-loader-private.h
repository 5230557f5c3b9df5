/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftPluginLoader: finds, opens and checks plugin shared objects. A plugin
 * is loaded once per process and never unloaded, so a replaced .so takes
 * effect at the next restart.
 */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

#define WEFT_MAX_PLUGINS 32

typedef struct {
  char                       *name;
  char                       *path;
  const WeftPluginDescriptor *desc;
  GModule                    *module;
  guint                       slot;     /* request data slot, 0..WEFT_MAX_PLUGINS-1 */
} WeftPlugin;

/* the plugin directories to use when the config names none: the build
 * tree's when the running binary is the build tree's, else the installed one */
GPtrArray  *weft_plugin_loader_default_dirs (void);
/* the loaded plugin @name, loading it from @dirs on first use */
WeftPlugin *weft_plugin_loader_get   (const char *name, GPtrArray *dirs, GError **error);
/* opens and checks one file (tests) */
WeftPlugin *weft_plugin_loader_open  (const char *name, const char *path, GError **error);
/* every plugin loaded so far */
GPtrArray  *weft_plugin_loader_list  (void);
/* TRUE when a plugin of that name exists in @dirs (without loading it) */
gboolean    weft_plugin_loader_exists (const char *name, GPtrArray *dirs);

G_END_DECLS
