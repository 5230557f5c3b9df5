/* weft-tracing-soup-private.h: the libsoup functions the exporter calls,
 * found when the first batch is exported
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gmodule.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/**
 * WeftTraceSoup:
 *
 * libsoup, opened at run time. tracing.so does not link it: libsoup and
 * the libraries it needs (Kerberos, SQLite, nghttp2, brotli, psl...) cost
 * about 1.3 MB of resident memory, which a proxy that has exported no
 * span yet should not pay.
 *
 * Each field has the type of the libsoup function whose name is "soup_"
 * and the field's name, so the compiler checks every call.
 */
typedef struct {
  GModule                                                 *module;
  __typeof__ (&soup_session_new_with_options)             session_new_with_options;
  __typeof__ (&soup_session_abort)                        session_abort;
  __typeof__ (&soup_session_send_and_read_async)          session_send_and_read_async;
  __typeof__ (&soup_session_send_and_read_finish)         session_send_and_read_finish;
  __typeof__ (&soup_message_new_from_uri)                 message_new_from_uri;
  __typeof__ (&soup_message_set_request_body_from_bytes)  message_set_request_body_from_bytes;
  __typeof__ (&soup_message_get_status)                   message_get_status;
  __typeof__ (&soup_message_get_reason_phrase)            message_get_reason_phrase;
} WeftTraceSoup;

/* the process's libsoup: opened on the first call (main thread only),
 * never closed; NULL, after one logged error, when it cannot be loaded */
const WeftTraceSoup *weft_trace_soup_get  (void);
/* opens the library at @path and finds every function; for tests too */
WeftTraceSoup       *weft_trace_soup_open (const char *path, GError **error);
void                 weft_trace_soup_free (WeftTraceSoup *soup);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftTraceSoup, weft_trace_soup_free)

G_END_DECLS
