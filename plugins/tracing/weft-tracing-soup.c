/* weft-tracing-soup.c: libsoup, loaded when the first batch is exported
 *
 * tracing.so is compiled against libsoup's headers but not linked with
 * it. The exporter calls libsoup through a WeftTraceSoup, filled here
 * from the library the first time a batch goes out, on the main thread.
 * The library stays open for the life of the process: the GTypes it
 * registers cannot be unregistered.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "weft-tracing-soup-private.h"

#include <weft/plugin.h>

/* the full path from pkg-config, so that a file of that name in the
 * working directory is never what gets loaded */
#ifndef WEFT_TRACE_SOUP_LIBRARY
#error "WEFT_TRACE_SOUP_LIBRARY must name libsoup-3.0's shared library"
#endif

/* the process's libsoup, and whether opening it was tried */
static WeftTraceSoup *weft_trace_soup;
static gboolean weft_trace_soup_tried;

static gboolean
weft_trace_soup_find (WeftTraceSoup *soup, const char *name, gpointer *fn, GError **error)
{
  if (g_module_symbol (soup->module, name, fn) && *fn != NULL)
    return TRUE;
  g_set_error (error, G_MODULE_ERROR, G_MODULE_ERROR_FAILED, "%s has no function %s",
               g_module_name (soup->module), name);
  return FALSE;
}

/* the name is the field's: a misspelt one fails to compile */
#define WEFT_TRACE_SOUP_FIND(soup, field, error) \
  weft_trace_soup_find ((soup), "soup_" #field, (gpointer *) &(soup)->field, (error))

static gboolean
weft_trace_soup_find_all (WeftTraceSoup *soup, GError **error)
{
  return WEFT_TRACE_SOUP_FIND (soup, session_new_with_options, error) &&
         WEFT_TRACE_SOUP_FIND (soup, session_abort, error) &&
         WEFT_TRACE_SOUP_FIND (soup, session_send_and_read_async, error) &&
         WEFT_TRACE_SOUP_FIND (soup, session_send_and_read_finish, error) &&
         WEFT_TRACE_SOUP_FIND (soup, message_new_from_uri, error) &&
         WEFT_TRACE_SOUP_FIND (soup, message_set_request_body_from_bytes, error) &&
         WEFT_TRACE_SOUP_FIND (soup, message_get_status, error) &&
         WEFT_TRACE_SOUP_FIND (soup, message_get_reason_phrase, error);
}

/**
 * weft_trace_soup_open:
 * @path: the shared library
 * @error: why it cannot be used
 *
 * Returns: (transfer full) (nullable): the library's functions
 */
WeftTraceSoup *
weft_trace_soup_open (const char *path, GError **error)
{
  g_autoptr(WeftTraceSoup) soup = g_new0 (WeftTraceSoup, 1);

  /* lazy: only the functions called get bound; local: libsoup's symbols
   * do not join the process's global scope */
  soup->module = g_module_open_full (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL, error);
  if (soup->module == NULL || !weft_trace_soup_find_all (soup, error))
    return NULL;
  return g_steal_pointer (&soup);
}

/**
 * weft_trace_soup_free:
 * @soup: (nullable): from weft_trace_soup_open()
 *
 * Closes the library; only for one the process does not use.
 */
void
weft_trace_soup_free (WeftTraceSoup *soup)
{
  if (soup == NULL)
    return;
  if (soup->module != NULL)
    g_module_close (soup->module);
  g_free (soup);
}

/**
 * weft_trace_soup_get:
 *
 * Opens libsoup the first time; main thread only.
 *
 * Returns: (nullable): the process's libsoup, NULL when it cannot be loaded
 */
const WeftTraceSoup *
weft_trace_soup_get (void)
{
  g_autoptr(GError) error = NULL;

  if (weft_trace_soup_tried)
    return weft_trace_soup;
  /* one try: a missing library does not come back, and one error says so */
  weft_trace_soup_tried = TRUE;
  weft_trace_soup = weft_trace_soup_open (WEFT_TRACE_SOUP_LIBRARY, &error);
  if (weft_trace_soup == NULL)
    weft_log (WEFT_LOG_ERROR, "tracing", "cannot load libsoup: %s; no span can be exported, "
              "each batch is counted as failed", error->message);
  return weft_trace_soup;
}
