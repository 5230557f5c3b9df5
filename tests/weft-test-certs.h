/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Certificates for the TLS unit tests, in one temporary directory: CAs and
 * workload certificates from the built weftctl ($WEFTCTL), and the leaves
 * weftctl will not make (expired, not yet valid, odd URI SANs) signed here
 * with GnuTLS by one of those CAs.
 */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>

G_BEGIN_DECLS

#define WEFT_TEST_DAY (24 * 60 * 60)

/* makes the temporary directory; call after g_test_init. In a
 * g_test_trap_subprocess() child: the parent's (WEFT_TEST_CERTS_DIR) */
void   weft_test_certs_init     (const char *name);
/* removes it and everything in it (the process that made it) */
void   weft_test_certs_cleanup  (void);
/* <tmpdir>/<dir>/<file>; @file may be NULL for the directory itself */
char  *weft_test_certs_path     (const char *dir, const char *file);

/* runs $WEFTCTL with @args; a failure fails the test with weftctl's stderr */
void   weft_test_weftctl        (const char *const *args);
/* weftctl cert ca --trust-domain cluster.local into <dir>/ca.pem, ca-key.pem */
void   weft_test_make_ca        (const char *dir);
/* weftctl cert issue (namespace default, one day) signed by <ca_dir>'s CA,
 * into <dir>/<sa>.pem and <dir>/<sa>-key.pem */
void   weft_test_issue          (const char *ca_dir, const char *dir, const char *sa);
/*
 * A leaf signed by <ca_dir>'s CA with the given URI SANs (may be empty) and
 * validity, written to <dir>/leaf.pem and <dir>/leaf-key.pem.
 */
void   weft_test_make_leaf      (const char *ca_dir, const char *dir, const char *const *uris,
                                 gint64 not_before, gint64 not_after);

/* a whole file, gnutls_free()d by the caller */
gnutls_datum_t weft_test_read_datum  (const char *file);
/* writes @d to @file and frees it */
void   weft_test_write_datum    (const char *file, gnutls_datum_t *d);
void   weft_test_remove_tree    (const char *dir);

G_END_DECLS
