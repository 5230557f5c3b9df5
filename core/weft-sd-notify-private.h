/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The sd_notify protocol spoken directly: one datagram to $NOTIFY_SOCKET,
 * no libsystemd needed. A no-op when the variable is unset.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* sends @state ("READY=1", ...); FALSE when it could not be sent */
gboolean weft_sd_notify (const char *state);
/* "RELOADING=1\nMONOTONIC_USEC=..." */
gboolean weft_sd_notify_reloading (void);

G_END_DECLS
