/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weftctl: the operator's command-line tool. `weftctl cert` makes a mesh
 * CA, issues workload certificates and inspects them.
 */
#include "weft-build-config.h"
#include "weftctl-cert-private.h"

#include <glib/gi18n.h>
#include <locale.h>

#define WEFT_CTL_EXIT_ERROR 1
#define WEFT_CTL_EXIT_USAGE 2

static void
weft_ctl_print_usage (void)
{
  g_print ("%s", _("Usage:\n"
                   "  weftctl [--version] COMMAND ...\n"
                   "\n"
                   "Commands:\n"
                   "  cert    mesh CA and workload certificates (ca, issue, inspect)\n"
                   "\n"
                   "Run 'weftctl COMMAND --help' for a command's options.\n"));
}

static void
weft_ctl_print_cert_usage (void)
{
  g_print ("%s", _("Usage:\n"
                   "  weftctl cert ca --trust-domain DOMAIN [--out-dir DIR] [--days N] [--force]\n"
                   "  weftctl cert issue --namespace NS --service-account SA [--trust-domain DOMAIN]\n"
                   "                     [--ca FILE] [--ca-key FILE] [--out-dir DIR] [--days N]\n"
                   "                     [--dns NAME ...] [--force]\n"
                   "  weftctl cert inspect FILE\n"
                   "\n"
                   "  ca       create a self-signed mesh CA: ca.pem and ca-key.pem\n"
                   "  issue    issue a workload certificate with the SPIFFE ID\n"
                   "           spiffe://DOMAIN/ns/NS/sa/SA: SA.pem (chain) and SA-key.pem\n"
                   "  inspect  print what the certificates in a PEM file hold\n"
                   "\n"
                   "Run 'weftctl cert SUBCOMMAND --help' for a subcommand's options.\n"));
}

/* the exit status for @error: 2 for a wrong command line, 1 for the rest */
static int
weft_ctl_fail (const char *command, const GError *error)
{
  gboolean usage = g_error_matches (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE)
                   || error->domain == G_OPTION_ERROR;

  g_printerr ("weftctl %s: %s\n", command, error->message);
  if (usage)
    g_printerr (_("Run 'weftctl %s --help' for the options.\n"), command);
  return usage ? WEFT_CTL_EXIT_USAGE : WEFT_CTL_EXIT_ERROR;
}

static int
weft_ctl_succeed (GString *report)
{
  g_print ("%s", report->str);
  return 0;
}

/* parses @argv (argv[0] is the subcommand) and refuses stray arguments */
static gboolean
weft_ctl_parse (GOptionContext *context, int *argc, char ***argv, int max_args, GError **error)
{
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  if (*argc - 1 > max_args)
    {
      g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE,
                   _("unexpected argument '%s'"), (*argv)[1 + max_args]);
      return FALSE;
    }
  return TRUE;
}

static gboolean
weft_ctl_check_days (int days, GError **error)
{
  /* a hundred years keeps notAfter far from any time_t trouble */
  if (days >= 1 && days <= 36500)
    return TRUE;
  g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE,
               _("--days %d is out of range (1 to 36500)"), days);
  return FALSE;
}

static gboolean
weft_ctl_require (const char *value, const char *option, GError **error)
{
  if (value != NULL)
    return TRUE;
  g_set_error (error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE, _("%s is required"), option);
  return FALSE;
}

/* one subcommand runs per process, so the program name is set once, here:
 * GOption prints "Usage: weftctl cert ca [OPTION…]" */
static GOptionContext *
weft_ctl_context (const char *command, const char *parameters, const char *summary,
                  GOptionEntry *entries)
{
  g_autofree char *prgname = g_strdup_printf ("weftctl %s", command);
  GOptionContext *context = NULL;

  g_set_prgname (prgname);
  context = g_option_context_new (parameters);

  g_option_context_set_summary (context, summary);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  return context;
}

static int
weft_ctl_cert_ca_main (int argc, char **argv)
{
  g_autofree char *trust_domain = NULL;
  g_autofree char *out_dir = NULL;
  int days = 3650;
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "trust-domain", 0, 0, G_OPTION_ARG_STRING, &trust_domain,
      N_("SPIFFE trust domain, e.g. cluster.local (required)"), N_("DOMAIN") },
    { "out-dir", 0, 0, G_OPTION_ARG_FILENAME, &out_dir,
      N_("Directory for ca.pem and ca-key.pem (default: .)"), N_("DIR") },
    { "days", 0, 0, G_OPTION_ARG_INT, &days, N_("Validity in days (default: 3650)"), N_("N") },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, N_("Replace existing files"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context =
    weft_ctl_context ("cert ca", NULL, _("Create a self-signed mesh CA with an ECDSA P-256 key."), entries);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  WeftCtlCaOptions opts = { 0 };

  if (!weft_ctl_parse (context, &argc, &argv, 0, &error)
      || !weft_ctl_require (trust_domain, "--trust-domain", &error)
      || !weft_ctl_check_days (days, &error))
    return weft_ctl_fail ("cert ca", error);
  if (!weft_ctl_is_trust_domain (trust_domain))
    {
      g_set_error (&error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE,
                   _("--trust-domain '%s' is not a trust domain (a-z, 0-9, '.', '-', '_')"),
                   trust_domain);
      return weft_ctl_fail ("cert ca", error);
    }
  opts.trust_domain = trust_domain;
  opts.out_dir = out_dir != NULL ? out_dir : ".";
  opts.days = days;
  opts.force = force;
  if (!weft_ctl_cert_make_ca (&opts, report, &error))
    return weft_ctl_fail ("cert ca", error);
  return weft_ctl_succeed (report);
}

static int
weft_ctl_cert_issue_main (int argc, char **argv)
{
  g_autofree char *ns = NULL;
  g_autofree char *service_account = NULL;
  g_autofree char *trust_domain = NULL;
  g_autofree char *ca_path = NULL;
  g_autofree char *ca_key_path = NULL;
  g_autofree char *out_dir = NULL;
  g_auto(GStrv) dns_names = NULL;
  int days = 1;
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "namespace", 0, 0, G_OPTION_ARG_STRING, &ns, N_("Workload namespace (required)"), N_("NS") },
    { "service-account", 0, 0, G_OPTION_ARG_STRING, &service_account,
      N_("Workload service account (required)"), N_("SA") },
    { "trust-domain", 0, 0, G_OPTION_ARG_STRING, &trust_domain,
      N_("SPIFFE trust domain (default: the one in the CA's spiffe:// URI)"), N_("DOMAIN") },
    { "ca", 0, 0, G_OPTION_ARG_FILENAME, &ca_path, N_("CA certificate (default: ca.pem)"), N_("FILE") },
    { "ca-key", 0, 0, G_OPTION_ARG_FILENAME, &ca_key_path,
      N_("CA private key (default: ca-key.pem)"), N_("FILE") },
    { "out-dir", 0, 0, G_OPTION_ARG_FILENAME, &out_dir,
      N_("Directory for SA.pem and SA-key.pem (default: .)"), N_("DIR") },
    { "days", 0, 0, G_OPTION_ARG_INT, &days, N_("Validity in days (default: 1)"), N_("N") },
    { "dns", 0, 0, G_OPTION_ARG_STRING_ARRAY, &dns_names,
      N_("Add a DNS name SAN; may be repeated"), N_("NAME") },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, N_("Replace existing files"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context =
    weft_ctl_context ("cert issue", NULL, _("Issue a workload certificate with its SPIFFE ID."), entries);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  WeftCtlIssueOptions opts = { 0 };

  if (!weft_ctl_parse (context, &argc, &argv, 0, &error)
      || !weft_ctl_require (ns, "--namespace", &error)
      || !weft_ctl_require (service_account, "--service-account", &error)
      || !weft_ctl_check_days (days, &error))
    return weft_ctl_fail ("cert issue", error);
  opts.ns = ns;
  opts.service_account = service_account;
  opts.trust_domain = trust_domain;
  opts.ca_path = ca_path != NULL ? ca_path : "ca.pem";
  opts.ca_key_path = ca_key_path != NULL ? ca_key_path : "ca-key.pem";
  opts.out_dir = out_dir != NULL ? out_dir : ".";
  opts.days = days;
  opts.dns_names = (const char * const *) dns_names;
  opts.force = force;
  if (!weft_ctl_cert_issue (&opts, report, &error))
    return weft_ctl_fail ("cert issue", error);
  return weft_ctl_succeed (report);
}

static int
weft_ctl_cert_inspect_main (int argc, char **argv)
{
  GOptionEntry entries[] = { { NULL } };
  g_autoptr(GOptionContext) context =
    weft_ctl_context ("cert inspect", "FILE", _("Print what the certificates in a PEM file hold."),
                      entries);
  g_autoptr(GString) report = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  if (!weft_ctl_parse (context, &argc, &argv, 1, &error))
    return weft_ctl_fail ("cert inspect", error);
  if (argc < 2)
    {
      g_set_error (&error, WEFT_CTL_ERROR, WEFT_CTL_ERROR_USAGE, _("a FILE to inspect is required"));
      return weft_ctl_fail ("cert inspect", error);
    }
  if (!weft_ctl_cert_inspect (argv[1], report, &error))
    return weft_ctl_fail ("cert inspect", error);
  return weft_ctl_succeed (report);
}

static gboolean
weft_ctl_is_help (const char *arg)
{
  return g_strcmp0 (arg, "--help") == 0 || g_strcmp0 (arg, "-h") == 0
         || g_strcmp0 (arg, "help") == 0;
}

/* argv[0] is "cert" */
static int
weft_ctl_cert_main (int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL;

  if (weft_ctl_is_help (sub))
    {
      weft_ctl_print_cert_usage ();
      return 0;
    }
  /* from here on argv[0] is the subcommand, as GOption wants it */
  if (g_strcmp0 (sub, "ca") == 0)
    return weft_ctl_cert_ca_main (argc - 1, argv + 1);
  if (g_strcmp0 (sub, "issue") == 0)
    return weft_ctl_cert_issue_main (argc - 1, argv + 1);
  if (g_strcmp0 (sub, "inspect") == 0)
    return weft_ctl_cert_inspect_main (argc - 1, argv + 1);
  if (sub == NULL)
    g_printerr (_("weftctl cert: a subcommand is required (ca, issue or inspect)\n"));
  else
    g_printerr (_("weftctl cert: unknown subcommand '%s' (use ca, issue or inspect)\n"), sub);
  g_printerr (_("Run 'weftctl cert --help' for the subcommands.\n"));
  return WEFT_CTL_EXIT_USAGE;
}

int
main (int argc, char **argv)
{
  const char *command = argc > 1 ? argv[1] : NULL;

  setlocale (LC_ALL, "");
  /* WEFT_LOCALEDIR lets tests use the catalogs of the build tree */
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("WEFT_LOCALEDIR") ? g_getenv ("WEFT_LOCALEDIR")
                                                                : WEFT_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (weft_ctl_is_help (command))
    {
      weft_ctl_print_usage ();
      return 0;
    }
  if (g_strcmp0 (command, "--version") == 0 || g_strcmp0 (command, "-V") == 0)
    {
      g_print ("weftctl %s\n", WEFT_VERSION);
      return 0;
    }
  if (g_strcmp0 (command, "cert") == 0)
    return weft_ctl_cert_main (argc - 1, argv + 1);
  if (command == NULL)
    g_printerr (_("weftctl: a command is required\n"));
  else
    g_printerr (_("weftctl: unknown command '%s'\n"), command);
  g_printerr (_("Run 'weftctl --help' for the commands.\n"));
  return WEFT_CTL_EXIT_USAGE;
}
