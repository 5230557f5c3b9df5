/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftTlsWatch: keeps an eye on the live workload certificate. It watches
 * the cert, key and bundle files (kubelet ..data swaps included) and calls
 * back when their bytes differ from what the live credentials were built
 * from, so a rotation becomes a reload; and it checks the leaf's expiry:
 * the weft_tls_certificate_expiry_seconds gauge and a warning in the log
 * when little time is left. Main thread only.
 */
#pragma once

#include "weft-config-private.h"
#include "weft-tls-credentials-private.h"

G_BEGIN_DECLS

typedef struct _WeftTlsWatch WeftTlsWatch;

WeftTlsWatch *weft_tls_watch_new    (GSourceFunc changed, gpointer data);
void          weft_tls_watch_free   (WeftTlsWatch *watch);
/* after a start or a reload: the files of @config (NULL = none) and the
 * credentials built from them; warns at once if the leaf is near expiry */
void          weft_tls_watch_update (WeftTlsWatch *watch, const WeftTlsConfig *config,
                                     WeftTlsCredentials *creds);
/* TRUE when the files' bytes differ from the live credentials' (or cannot
 * be read, so a reload reports why) */
gboolean      weft_tls_watch_files_changed (WeftTlsWatch *watch);
/* sets the expiry gauge to now (before /metrics renders) */
void          weft_tls_watch_refresh (WeftTlsWatch *watch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftTlsWatch, weft_tls_watch_free)

G_END_DECLS
