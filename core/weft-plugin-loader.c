/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-plugin-loader-private.h"
#include "weft-build-config.h"
#include "weft-log-private.h"

#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

static GPtrArray *weft_plugins;   /* WeftPlugin*, load order; main thread only */

GPtrArray *
weft_plugin_loader_default_dirs (void)
{
  GPtrArray *dirs = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *exe_dir = exe != NULL ? g_path_get_dirname (exe) : NULL;
  g_autofree char *build_core = g_build_filename (WEFT_BUILD_ROOT, "core", NULL);
  const char *env = g_getenv ("WEFT_PLUGIN_DIR");

  if (env != NULL && *env != '\0')
    g_ptr_array_add (dirs, g_strdup (env));
  /* run from the build tree: use the plugins built beside the binary */
  if (exe_dir != NULL && (g_strcmp0 (exe_dir, build_core) == 0 ||
                          g_str_has_prefix (exe_dir, WEFT_BUILD_ROOT "/")))
    g_ptr_array_add (dirs, g_strdup (WEFT_BUILD_PLUGINDIR));
  else
    g_ptr_array_add (dirs, g_strdup (WEFT_PLUGINDIR));
  return dirs;
}

static char *
weft_plugin_loader_find (const char *name, GPtrArray *dirs)
{
  for (guint i = 0; i < dirs->len; i++)
    {
      /* installed: DIR/NAME.so; build tree: DIR/NAME/NAME.so */
      g_autofree char *file = g_strconcat (name, ".so", NULL);
      g_autofree char *flat = g_build_filename (dirs->pdata[i], file, NULL);
      g_autofree char *nested = g_build_filename (dirs->pdata[i], name, file, NULL);

      if (g_file_test (flat, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&flat);
      if (g_file_test (nested, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&nested);
    }
  return NULL;
}

gboolean
weft_plugin_loader_exists (const char *name, GPtrArray *dirs)
{
  g_autofree char *path = NULL;

  if (weft_plugins != NULL)
    for (guint i = 0; i < weft_plugins->len; i++)
      if (strcmp (((WeftPlugin *) weft_plugins->pdata[i])->name, name) == 0)
        return TRUE;
  path = weft_plugin_loader_find (name, dirs);
  return path != NULL;
}

static gboolean
weft_plugin_loader_check (const char *name, const char *path,
                          const WeftPluginDescriptor *desc, GError **error)
{
  if (desc == NULL)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("plugin %s returned no descriptor"), path);
      return FALSE;
    }
  if (desc->abi_version != WEFT_PLUGIN_ABI_VERSION)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("plugin %s has ABI %u, weft has ABI %u: rebuild %s against weft-plugin %u"),
                   path, desc->abi_version, WEFT_PLUGIN_ABI_VERSION, path,
                   WEFT_PLUGIN_ABI_VERSION);
      return FALSE;
    }
  if (desc->struct_size < G_STRUCT_OFFSET (WeftPluginDescriptor, reserved))
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("plugin %s has a truncated descriptor: rebuild it against weft-plugin %u"),
                   path, WEFT_PLUGIN_ABI_VERSION);
      return FALSE;
    }
  if (desc->name == NULL || strcmp (desc->name, name) != 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("plugin %s calls itself '%s', expected '%s'"),
                   path, desc->name ? desc->name : "(null)", name);
      return FALSE;
    }
  if (desc->config_new == NULL || desc->config_free == NULL)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("plugin %s lacks config_new or config_free"), path);
      return FALSE;
    }
  return TRUE;
}

WeftPlugin *
weft_plugin_loader_open (const char *name, const char *path, GError **error)
{
  GModule *module;
  WeftPluginGetDescriptorFunc get = NULL;
  const WeftPluginDescriptor *desc;
  WeftPlugin *plugin;

  if (weft_plugins == NULL)
    weft_plugins = g_ptr_array_new ();
  if (weft_plugins->len >= WEFT_MAX_PLUGINS)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("cannot load plugin %s: at most %u plugins"), path, WEFT_MAX_PLUGINS);
      return NULL;
    }
  module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN, _("cannot load plugin %s: %s"),
                   path, g_module_error ());
      return NULL;
    }
  if (!g_module_symbol (module, WEFT_PLUGIN_ENTRY_SYMBOL, (gpointer *) &get) || get == NULL)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("plugin %s does not export %s (weft has ABI %u): rebuild it against weft-plugin %u"),
                   path, WEFT_PLUGIN_ENTRY_SYMBOL, WEFT_PLUGIN_ABI_VERSION,
                   WEFT_PLUGIN_ABI_VERSION);
      g_module_close (module);
      return NULL;
    }
  desc = get ();
  if (!weft_plugin_loader_check (name, path, desc, error))
    {
      g_module_close (module);
      return NULL;
    }
  /* never unloaded: hooks of old generations may still run */
  g_module_make_resident (module);
  plugin = g_new0 (WeftPlugin, 1);
  plugin->name = g_strdup (name);
  plugin->path = g_strdup (path);
  plugin->desc = desc;
  plugin->module = module;
  plugin->slot = weft_plugins->len;
  g_ptr_array_add (weft_plugins, plugin);
  weft_log (WEFT_LOG_INFO, "plugin", "loaded %s %s from %s", name,
            desc->version ? desc->version : "", path);
  return plugin;
}

WeftPlugin *
weft_plugin_loader_get (const char *name, GPtrArray *dirs, GError **error)
{
  g_autofree char *path = NULL;

  if (weft_plugins != NULL)
    for (guint i = 0; i < weft_plugins->len; i++)
      {
        WeftPlugin *plugin = weft_plugins->pdata[i];
        if (strcmp (plugin->name, name) == 0)
          return plugin;
      }
  path = weft_plugin_loader_find (name, dirs);
  if (path == NULL)
    {
      g_autoptr(GString) list = g_string_new (NULL);
      for (guint i = 0; i < dirs->len; i++)
        g_string_append_printf (list, "%s%s", i ? ", " : "", (char *) dirs->pdata[i]);
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_PLUGIN,
                   _("plugin '%s' not found: no %s.so in %s"), name, name, list->str);
      return NULL;
    }
  return weft_plugin_loader_open (name, path, error);
}

GPtrArray *
weft_plugin_loader_list (void)
{
  if (weft_plugins == NULL)
    weft_plugins = g_ptr_array_new ();
  return weft_plugins;
}
