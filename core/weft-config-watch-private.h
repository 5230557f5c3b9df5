/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftConfigWatch: inotify on the directory that holds the config, so that
 * a kubelet ConfigMap update (a new timestamped directory, then ..data_tmp
 * renamed over ..data), a file replaced by rename and a file edited in
 * place all trigger; a burst of events becomes one callback after a short
 * quiet period. Runs on the main thread.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _WeftConfigWatch WeftConfigWatch;

WeftConfigWatch *weft_config_watch_new  (const char *path, guint debounce_ms,
                                         GSourceFunc changed, gpointer data, GError **error);
void             weft_config_watch_free (WeftConfigWatch *watch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftConfigWatch, weft_config_watch_free)

G_END_DECLS
