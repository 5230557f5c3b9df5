/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftNode: a YAML tree (libyaml) with file:line:col on every node. The public
 * read-only accessors are in include/weft/plugin.h.
 */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

/* WeftNodeDoc: every document of one file; owns all nodes */
typedef struct _WeftNodeFile WeftNodeFile;

/*
 * Parses every YAML document of @path (following symlinks). A syntax error
 * fails with WEFT_ERROR_CONFIG and "path:line:col: message". Aliases are
 * resolved; a file of more than 1,000,000 nodes (alias expansion included)
 * is refused.
 */
WeftNodeFile   *weft_node_file_load        (const char *path, GError **error);
/* same, from memory (tests, fuzzing); @display_name is used in positions */
WeftNodeFile   *weft_node_file_load_data   (const char *display_name,
                                            const char *data, gsize len, GError **error);
void            weft_node_file_free        (WeftNodeFile *file);
guint           weft_node_file_get_n_documents (WeftNodeFile *file);
/* the root node of a document; NULL for an empty document */
const WeftNode *weft_node_file_get_document (WeftNodeFile *file, guint idx);
/* the raw bytes read, for hashing */
GBytes         *weft_node_file_get_bytes   (WeftNodeFile *file);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftNodeFile, weft_node_file_free)

G_END_DECLS
