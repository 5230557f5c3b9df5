/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * weftctl cert: a mesh CA, workload certificates with SPIFFE IDs, and a
 * reader for what a certificate holds. Built on GnuTLS alone.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * WEFT_CTL_ERROR:
 *
 * The error domain of weftctl. %WEFT_CTL_ERROR_USAGE means the command line
 * was wrong (exit status 2); every other code exits with 1.
 */
#define WEFT_CTL_ERROR (weft_ctl_error_quark ())
GQuark weft_ctl_error_quark (void);

/**
 * WeftCtlErrorCode:
 * @WEFT_CTL_ERROR_USAGE: a bad option or argument
 * @WEFT_CTL_ERROR_IO: a file could not be read or written
 * @WEFT_CTL_ERROR_EXISTS: an output file exists and --force was not given
 * @WEFT_CTL_ERROR_CERT: a file does not hold a usable certificate or key
 * @WEFT_CTL_ERROR_KEY_MISMATCH: the CA key does not belong to the CA certificate
 * @WEFT_CTL_ERROR_TLS: GnuTLS failed
 */
typedef enum {
  WEFT_CTL_ERROR_USAGE,
  WEFT_CTL_ERROR_IO,
  WEFT_CTL_ERROR_EXISTS,
  WEFT_CTL_ERROR_CERT,
  WEFT_CTL_ERROR_KEY_MISMATCH,
  WEFT_CTL_ERROR_TLS,
} WeftCtlErrorCode;

/**
 * WeftCtlCaOptions:
 * @trust_domain: the SPIFFE trust domain, e.g. "cluster.local"
 * @out_dir: where ca.pem and ca-key.pem go
 * @days: validity in days
 * @force: replace existing files
 */
typedef struct {
  const char *trust_domain;
  const char *out_dir;
  int days;
  gboolean force;
} WeftCtlCaOptions;

/**
 * WeftCtlIssueOptions:
 * @ns: the workload's Kubernetes namespace (a DNS label)
 * @service_account: the workload's service account (a DNS label)
 * @trust_domain: (nullable): the trust domain; NULL takes the CA's
 * @ca_path: the CA certificate (PEM)
 * @ca_key_path: the CA private key (PEM)
 * @out_dir: where <service-account>.pem and <service-account>-key.pem go
 * @days: validity in days
 * @dns_names: (nullable): extra DNS SANs, NULL-terminated
 * @force: replace existing files
 */
typedef struct {
  const char *ns;
  const char *service_account;
  const char *trust_domain;
  const char *ca_path;
  const char *ca_key_path;
  const char *out_dir;
  int days;
  const char * const *dns_names;
  gboolean force;
} WeftCtlIssueOptions;

gboolean weft_ctl_is_dns_label (const char *s);
gboolean weft_ctl_is_dns_name (const char *s);
gboolean weft_ctl_is_trust_domain (const char *s);

gboolean weft_ctl_cert_make_ca (const WeftCtlCaOptions *opts, GString *report, GError **error);
gboolean weft_ctl_cert_issue (const WeftCtlIssueOptions *opts, GString *report, GError **error);
gboolean weft_ctl_cert_inspect (const char *path, GString *out, GError **error);

G_END_DECLS
