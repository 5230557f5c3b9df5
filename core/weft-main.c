/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weft: the sidecar proxy daemon.
 */
#include "weft-build-config.h"
#include "weft-log-private.h"
#include "weft-server-private.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

static void
weft_print_problems (const GError *error)
{
  /* one problem per line, each file:line:col: message */
  g_printerr ("%s\n", error->message);
}

static int
weft_main_check (const char *config_path)
{
  g_autoptr(GError) error = NULL;

  if (!weft_server_check (config_path, &error))
    {
      weft_print_problems (error);
      g_printerr (_("%s: configuration is invalid\n"), config_path);
      return 1;
    }
  g_print (_("%s: configuration is valid\n"), config_path);
  return 0;
}

/* a sidecar holds a socket per client and per upstream connection: the
 * soft limit (often 1024) goes up to the hard one, as nginx's
 * worker_rlimit_nofile does; the systemd unit raises the hard one */
static void
weft_main_raise_nofile (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
    weft_log (WEFT_LOG_WARNING, "server", "cannot raise the open-file limit to %llu",
              (unsigned long long) rl.rlim_max);
}

static int
weft_main_run (const char *config_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WeftServer) server = NULL;

  weft_main_raise_nofile ();
  server = weft_server_new (config_path, &error);

  if (server == NULL)
    {
      weft_print_problems (error);
      g_printerr (_("weft: cannot start with %s\n"), config_path);
      return 1;
    }
  if (!weft_server_start (server, &error))
    {
      g_printerr (_("weft: cannot start: %s\n"), error->message);
      return 1;
    }
  weft_server_run (server);
  weft_log (WEFT_LOG_INFO, "server", "drained, exiting");
  return 0;
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *log_level = NULL;
  gboolean check = FALSE;
  gboolean version = FALSE;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *config_help = NULL;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, NULL, N_("PATH") },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      N_("Validate the configuration and exit; binds nothing"), NULL },
    { "log-level", 'l', 0, G_OPTION_ARG_STRING, &log_level,
      N_("error, warning, info (default) or debug"), N_("LEVEL") },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, N_("Print the version and exit"), NULL },
    { NULL }
  };
  WeftLogLevel level = WEFT_LOG_INFO;

  /* a peer that closes must be an error return, not a killed process */
  signal (SIGPIPE, SIG_IGN);
  setlocale (LC_ALL, "");
  /* WEFT_LOCALEDIR lets tests use the catalogs of the build tree */
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("WEFT_LOCALEDIR") ? g_getenv ("WEFT_LOCALEDIR")
                                                                : WEFT_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* the default path is filled in at run time, so translators see one string */
  config_help = g_strdup_printf (_("Configuration file or directory (default: %s)"),
                                 WEFT_SYSCONFDIR "/weft");
  entries[0].description = config_help;
  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, _("weft: a service-mesh sidecar proxy."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("weft: %s\n", error->message);
      g_printerr (_("Run 'weft --help' for the options.\n"));
      return 2;
    }
  if (version)
    {
      g_print ("weft %s (plugin ABI %d)\n", WEFT_VERSION, WEFT_PLUGIN_ABI_VERSION);
      return 0;
    }
  if (log_level != NULL && !weft_log_parse_level (log_level, &level))
    {
      g_printerr (_("weft: unknown log level '%s' (use error, warning, info or debug)\n"),
                  log_level);
      return 2;
    }
  weft_log_set_level (level);
  if (config_path == NULL)
    config_path = g_strdup (WEFT_SYSCONFDIR "/weft");
  if (check)
    return weft_main_check (config_path);
  return weft_main_run (config_path);
}
