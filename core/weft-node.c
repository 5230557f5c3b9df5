/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftNode: YAML documents read with libyaml's event parser into a tree in
 * which every node knows its file, line and column.
 */

#include "weft-node-private.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <glib/gi18n.h>
#include <yaml.h>

/* billion-laughs protection: nodes per file, alias expansion included */
#define WEFT_NODE_MAX 1000000

/* keys longer than this never get a "did you mean" hint */
#define WEFT_NODE_HINT_MAX_LEN 64

/* nodes, scalars and child arrays live in blocks of this size: a big
 * config is a few hundred thousand small pieces, and one free per block
 * (and whole pages back to the system) beats one per piece */
#define WEFT_NODE_BLOCK_SIZE (64 * 1024)

/* a map with more keys than this checks duplicates with a hash table */
#define WEFT_NODE_LINEAR_KEYS 8

/* every pointer in a node points into its file's blocks */
struct _WeftNode
{
  WeftNodeKind  kind;
  gboolean      plain;      /* unquoted and untagged scalar */
  gboolean      complete;   /* end seen: an alias to it is no recursion */
  guint         line;
  guint         column;
  guint         n_children;
  char         *scalar;
  const char   *file;       /* the WeftNodeFile's name */
  guint64       weight;     /* nodes of the subtree, aliases expanded */
  WeftNode    **children;   /* maps hold key, value, key, value...; set at the end */
};

struct _WeftNodeFile
{
  char       *name;
  GBytes     *bytes;
  GSList     *blocks;       /* own every node, scalar and child array */
  char       *free_at;      /* the unused rest of the first block */
  gsize       free_len;
  GPtrArray  *documents;    /* root node per document, NULL when empty */
};

/* a collection being read: its children so far */
typedef struct
{
  WeftNode    *node;
  GPtrArray   *children;   /* reused from one collection to the next */
  GHashTable  *keys;       /* maps past WEFT_NODE_LINEAR_KEYS keys: text -> key node */
} WeftNodeOpen;

typedef struct
{
  WeftNodeFile  *file;
  yaml_parser_t  parser;
  gboolean       parser_ready;
  GHashTable    *anchors;   /* anchor -> node, reset per document */
  GArray        *stack;     /* WeftNodeOpen: open collections; entries past
                             * the top keep their arrays for reuse */
  guint          depth;
  WeftNode      *root;
  guint64        count;     /* nodes so far, aliases expanded */
  gboolean       done;
} WeftNodeBuilder;

void
weft_node_file_free (WeftNodeFile *file)
{
  if (file == NULL)
    return;
  g_ptr_array_unref (file->documents);
  g_slist_free_full (file->blocks, g_free);
  g_bytes_unref (file->bytes);
  g_free (file->name);
  g_free (file);
}

static WeftNodeFile *
weft_node_file_new (const char *name, GBytes *bytes)
{
  WeftNodeFile *file = g_new0 (WeftNodeFile, 1);

  file->name = g_strdup (name);
  file->bytes = g_bytes_ref (bytes);
  file->documents = g_ptr_array_new ();
  return file;
}

/* @size bytes from the file's blocks, pointer-aligned, not zeroed */
static gpointer
weft_node_file_alloc (WeftNodeFile *file, gsize size)
{
  gpointer p;

  size = (size + sizeof (gpointer) - 1) & ~(sizeof (gpointer) - 1);
  if (size > file->free_len)
    {
      gsize block = MAX (size, WEFT_NODE_BLOCK_SIZE);
      file->blocks = g_slist_prepend (file->blocks, g_malloc (block));
      file->free_at = file->blocks->data;
      file->free_len = block;
    }
  p = file->free_at;
  file->free_at += size;
  file->free_len -= size;
  return p;
}

guint
weft_node_file_get_n_documents (WeftNodeFile *file)
{
  g_return_val_if_fail (file != NULL, 0);
  return file->documents->len;
}

const WeftNode *
weft_node_file_get_document (WeftNodeFile *file, guint idx)
{
  g_return_val_if_fail (file != NULL, NULL);
  if (idx >= file->documents->len)
    return NULL;
  return g_ptr_array_index (file->documents, idx);
}

GBytes *
weft_node_file_get_bytes (WeftNodeFile *file)
{
  g_return_val_if_fail (file != NULL, NULL);
  return file->bytes;
}

/* ------------------------------------------------------------------ */
/* building the tree from parser events                                */
/* ------------------------------------------------------------------ */

static void
weft_node_open_clear (WeftNodeOpen *open)
{
  g_clear_pointer (&open->children, g_ptr_array_unref);
  g_clear_pointer (&open->keys, g_hash_table_unref);
}

static void
weft_node_builder_clear (WeftNodeBuilder *b)
{
  if (b->parser_ready)
    yaml_parser_delete (&b->parser);
  g_clear_pointer (&b->anchors, g_hash_table_unref);
  g_clear_pointer (&b->stack, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (WeftNodeBuilder, weft_node_builder_clear)

static gboolean weft_node_builder_fail (WeftNodeBuilder *b, yaml_mark_t mark, GError **error,
                                        const char *format, ...) G_GNUC_PRINTF (4, 5);

static gboolean
weft_node_builder_fail (WeftNodeBuilder *b, yaml_mark_t mark, GError **error,
                        const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG, "%s:%u:%u: %s", b->file->name,
               (guint) mark.line + 1, (guint) mark.column + 1, message);
  return FALSE;
}

static gboolean
weft_node_builder_count (WeftNodeBuilder *b, guint64 n, yaml_mark_t mark, GError **error)
{
  b->count += n;
  if (b->count <= WEFT_NODE_MAX)
    return TRUE;
  return weft_node_builder_fail (b, mark, error,
                                 _("document too large: more than %d nodes (aliases expanded)"),
                                 WEFT_NODE_MAX);
}

static WeftNode *
weft_node_builder_new_node (WeftNodeBuilder *b, WeftNodeKind kind, yaml_mark_t mark,
                            GError **error)
{
  if (!weft_node_builder_count (b, 1, mark, error))
    return NULL;

  WeftNode *node = weft_node_file_alloc (b->file, sizeof (WeftNode));
  *node = (WeftNode) {
    .kind = kind,
    .file = b->file->name,
    .line = (guint) mark.line + 1,
    .column = (guint) mark.column + 1,
    .weight = 1,
  };
  return node;
}

static WeftNodeOpen *
weft_node_builder_top (WeftNodeBuilder *b)
{
  return &g_array_index (b->stack, WeftNodeOpen, b->depth - 1);
}

/* the earlier key of @open with the text @text, or NULL */
static const WeftNode *
weft_node_open_find_key (WeftNodeOpen *open, const char *text)
{
  if (open->keys != NULL)
    return g_hash_table_lookup (open->keys, text);
  for (guint i = 0; i < open->children->len; i += 2)
    {
      const WeftNode *key = open->children->pdata[i];
      if (strcmp (key->scalar, text) == 0)
        return key;
    }
  return NULL;
}

/* small maps are scanned; a big one gets its index once it is big */
static void
weft_node_open_index_key (WeftNodeOpen *open, WeftNode *key)
{
  if (open->keys == NULL && open->children->len / 2 < WEFT_NODE_LINEAR_KEYS)
    return;
  if (open->keys == NULL)
    {
      open->keys = g_hash_table_new (g_str_hash, g_str_equal);
      for (guint i = 0; i < open->children->len; i += 2)
        g_hash_table_insert (open->keys, ((WeftNode *) open->children->pdata[i])->scalar,
                             open->children->pdata[i]);
    }
  g_hash_table_insert (open->keys, key->scalar, key);
}

/* a mapping key: a scalar, no merge key, not seen before in this map */
static gboolean
weft_node_builder_check_key (WeftNodeBuilder *b, WeftNodeOpen *map, WeftNode *key,
                             yaml_mark_t mark, GError **error)
{
  if (key->kind != WEFT_NODE_SCALAR)
    return weft_node_builder_fail (b, mark, error, _("mapping keys must be scalars"));
  if (key->plain && g_str_equal (key->scalar, "<<"))
    return weft_node_builder_fail (b, mark, error, _("merge keys are not supported"));

  const WeftNode *first = weft_node_open_find_key (map, key->scalar);
  if (first != NULL)
    return weft_node_builder_fail (b, mark, error,
                                   _("duplicate key '%s' (first at line %u, column %u)"),
                                   key->scalar, first->line, first->column);
  weft_node_open_index_key (map, key);
  return TRUE;
}

/* hangs @node under the open collection, or makes it the document root */
static gboolean
weft_node_builder_add (WeftNodeBuilder *b, WeftNode *node, yaml_mark_t mark, GError **error)
{
  if (b->depth == 0)
    {
      b->root = node;
      return TRUE;
    }

  WeftNodeOpen *parent = weft_node_builder_top (b);
  gboolean is_key = parent->node->kind == WEFT_NODE_MAP && parent->children->len % 2 == 0;

  if (is_key && !weft_node_builder_check_key (b, parent, node, mark, error))
    return FALSE;
  g_ptr_array_add (parent->children, node);
  return TRUE;
}

static void
weft_node_builder_set_anchor (WeftNodeBuilder *b, const yaml_char_t *anchor, WeftNode *node)
{
  if (anchor != NULL)
    g_hash_table_insert (b->anchors, g_strdup ((const char *) anchor), node);
}

static gboolean
weft_node_builder_scalar (WeftNodeBuilder *b, yaml_event_t *event, GError **error)
{
  WeftNode *node = weft_node_builder_new_node (b, WEFT_NODE_SCALAR, event->start_mark, error);
  if (node == NULL)
    return FALSE;

  node->scalar = weft_node_file_alloc (b->file, event->data.scalar.length + 1);
  memcpy (node->scalar, event->data.scalar.value, event->data.scalar.length);
  node->scalar[event->data.scalar.length] = '\0';
  node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                && event->data.scalar.plain_implicit;
  node->complete = TRUE;
  weft_node_builder_set_anchor (b, event->data.scalar.anchor, node);
  return weft_node_builder_add (b, node, event->start_mark, error);
}

static gboolean
weft_node_builder_start (WeftNodeBuilder *b, yaml_event_t *event, WeftNodeKind kind,
                         GError **error)
{
  WeftNode *node = weft_node_builder_new_node (b, kind, event->start_mark, error);
  if (node == NULL)
    return FALSE;

  const yaml_char_t *anchor = kind == WEFT_NODE_MAP
                              ? event->data.mapping_start.anchor
                              : event->data.sequence_start.anchor;
  weft_node_builder_set_anchor (b, anchor, node);
  if (!weft_node_builder_add (b, node, event->start_mark, error))
    return FALSE;
  if (b->depth == b->stack->len)
    g_array_set_size (b->stack, b->depth + 1);
  WeftNodeOpen *open = &g_array_index (b->stack, WeftNodeOpen, b->depth++);
  open->node = node;
  if (open->children == NULL)
    open->children = g_ptr_array_new ();
  return TRUE;
}

static void
weft_node_builder_end (WeftNodeBuilder *b)
{
  WeftNodeOpen *open = weft_node_builder_top (b);
  WeftNode *node = open->node;
  gsize size = open->children->len * sizeof (WeftNode *);

  /* bounded by b->count, so this cannot overflow */
  for (guint i = 0; i < open->children->len; i++)
    node->weight += ((WeftNode *) g_ptr_array_index (open->children, i))->weight;
  node->n_children = open->children->len;
  node->children = size > 0 ? weft_node_file_alloc (b->file, size) : NULL;
  if (size > 0)
    memcpy (node->children, open->children->pdata, size);
  node->complete = TRUE;
  g_ptr_array_set_size (open->children, 0);
  g_clear_pointer (&open->keys, g_hash_table_unref);
  b->depth--;
}

static gboolean
weft_node_builder_alias (WeftNodeBuilder *b, yaml_event_t *event, GError **error)
{
  const char *anchor = (const char *) event->data.alias.anchor;
  WeftNode *target = g_hash_table_lookup (b->anchors, anchor);

  if (target == NULL)
    return weft_node_builder_fail (b, event->start_mark, error, _("unknown alias '*%s'"), anchor);
  if (!target->complete)
    return weft_node_builder_fail (b, event->start_mark, error,
                                   _("alias '*%s' refers to a node that contains it"), anchor);
  if (!weft_node_builder_count (b, target->weight, event->start_mark, error))
    return FALSE;
  /* the tree shares the anchored node; every node is owned by the file */
  return weft_node_builder_add (b, target, event->start_mark, error);
}

static void
weft_node_builder_end_document (WeftNodeBuilder *b)
{
  WeftNode *root = g_steal_pointer (&b->root);

  if (root != NULL && weft_node_is_null (root))
    root = NULL;
  g_ptr_array_add (b->file->documents, root);
  g_hash_table_remove_all (b->anchors);
}

static gboolean
weft_node_builder_event (WeftNodeBuilder *b, yaml_event_t *event, GError **error)
{
  switch (event->type)
    {
    case YAML_STREAM_END_EVENT:
      b->done = TRUE;
      return TRUE;
    case YAML_DOCUMENT_END_EVENT:
      weft_node_builder_end_document (b);
      return TRUE;
    case YAML_SCALAR_EVENT:
      return weft_node_builder_scalar (b, event, error);
    case YAML_SEQUENCE_START_EVENT:
      return weft_node_builder_start (b, event, WEFT_NODE_SEQ, error);
    case YAML_MAPPING_START_EVENT:
      return weft_node_builder_start (b, event, WEFT_NODE_MAP, error);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      weft_node_builder_end (b);
      return TRUE;
    case YAML_ALIAS_EVENT:
      return weft_node_builder_alias (b, event, error);
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_START_EVENT:
    default:
      return TRUE;
    }
}

/* reader errors only carry a byte offset: turn it into line and column */
static yaml_mark_t
weft_node_builder_offset_mark (WeftNodeBuilder *b, gsize offset)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (b->file->bytes, &len);
  yaml_mark_t mark = { 0, };

  for (gsize i = 0; i < offset && i < len; i++)
    {
      mark.column++;
      if (data[i] != '\n')
        continue;
      mark.line++;
      mark.column = 0;
    }
  return mark;
}

static gboolean
weft_node_builder_parser_error (WeftNodeBuilder *b, GError **error)
{
  yaml_parser_t *p = &b->parser;
  const char *problem = p->problem != NULL ? p->problem : _("invalid YAML");

  if (p->error == YAML_MEMORY_ERROR)
    return weft_node_builder_fail (b, p->problem_mark, error, _("out of memory"));
  if (p->error == YAML_READER_ERROR)
    return weft_node_builder_fail (b, weft_node_builder_offset_mark (b, p->problem_offset),
                                   error, _("%s (byte 0x%02x)"), problem,
                                   (guint) p->problem_value & 0xff);
  if (p->context != NULL)
    return weft_node_builder_fail (b, p->problem_mark, error, _("%s (%s at line %u)"),
                                   problem, p->context, (guint) p->context_mark.line + 1);
  return weft_node_builder_fail (b, p->problem_mark, error, "%s", problem);
}

static gboolean
weft_node_builder_run (WeftNodeBuilder *b, GError **error)
{
  while (!b->done)
    {
      yaml_event_t event;

      if (!yaml_parser_parse (&b->parser, &event))
        return weft_node_builder_parser_error (b, error);

      gboolean ok = weft_node_builder_event (b, &event, error);
      yaml_event_delete (&event);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static WeftNodeFile *
weft_node_file_parse (const char *name, GBytes *bytes, GError **error)
{
  g_autoptr(WeftNodeFile) file = weft_node_file_new (name, bytes);
  g_auto(WeftNodeBuilder) b = { 0, };
  gsize len = 0;
  const unsigned char *data = g_bytes_get_data (bytes, &len);

  b.file = file;
  b.anchors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  b.stack = g_array_new (FALSE, TRUE, sizeof (WeftNodeOpen));
  g_array_set_clear_func (b.stack, (GDestroyNotify) weft_node_open_clear);
  if (!yaml_parser_initialize (&b.parser))
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_FAILED, "%s: %s", name, _("out of memory"));
      return NULL;
    }
  b.parser_ready = TRUE;
  yaml_parser_set_input_string (&b.parser, data != NULL ? data : (const unsigned char *) "", len);

  if (!weft_node_builder_run (&b, error))
    return NULL;
  return g_steal_pointer (&file);
}

WeftNodeFile *
weft_node_file_load_data (const char *display_name, const char *data, gsize len,
                          GError **error)
{
  g_autoptr(GBytes) bytes = g_bytes_new (data, len);

  g_return_val_if_fail (display_name != NULL, NULL);
  return weft_node_file_parse (display_name, bytes, error);
}

/* returns 0 or the errno of the failed read */
static int
weft_node_read_fd (int fd, GByteArray *buf)
{
  guint8 chunk[16384];

  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return errno;
      if (n == 0)
        return 0;
      g_byte_array_append (buf, chunk, (guint) n);
    }
}

/* not g_file_get_contents: its message is not the "path: reason" operators grep for */
static GBytes *
weft_node_read_file (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s: %s", path, g_strerror (saved));
      return NULL;
    }

  g_autoptr(GByteArray) buf = g_byte_array_new ();
  int saved = weft_node_read_fd (fd, buf);
  close (fd);
  if (saved != 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, "%s: %s", path, g_strerror (saved));
      return NULL;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

WeftNodeFile *
weft_node_file_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  g_autoptr(GBytes) bytes = weft_node_read_file (path, error);
  if (bytes == NULL)
    return NULL;
  return weft_node_file_parse (path, bytes, error);
}

/* ------------------------------------------------------------------ */
/* read-only accessors                                                 */
/* ------------------------------------------------------------------ */

WeftNodeKind
weft_node_get_kind (const WeftNode *node)
{
  g_return_val_if_fail (node != NULL, WEFT_NODE_SCALAR);
  return node->kind;
}

const char *
weft_node_get_scalar (const WeftNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return node->kind == WEFT_NODE_SCALAR ? node->scalar : NULL;
}

/* a missing node (NULL) counts as null too, so lookups chain */
gboolean
weft_node_is_null (const WeftNode *node)
{
  static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };

  if (node == NULL)
    return TRUE;
  if (node->kind != WEFT_NODE_SCALAR || !node->plain)
    return FALSE;
  return g_strv_contains (nulls, node->scalar);
}

const char *
weft_node_get_file (const WeftNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return node->file;
}

guint
weft_node_get_line (const WeftNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->line;
}

guint
weft_node_get_column (const WeftNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->column;
}

guint
weft_node_get_length (const WeftNode *node)
{
  if (node == NULL || node->kind == WEFT_NODE_SCALAR)
    return 0;
  if (node->kind == WEFT_NODE_MAP)
    return node->n_children / 2;
  return node->n_children;
}

const WeftNode *
weft_node_get_item (const WeftNode *node, guint idx)
{
  if (node == NULL || node->kind != WEFT_NODE_SEQ || idx >= node->n_children)
    return NULL;
  return node->children[idx];
}

static const WeftNode *
weft_node_get_pair_part (const WeftNode *node, guint idx, guint part)
{
  if (node == NULL || node->kind != WEFT_NODE_MAP || idx >= node->n_children / 2)
    return NULL;
  return node->children[idx * 2 + part];
}

const WeftNode *
weft_node_get_key (const WeftNode *node, guint idx)
{
  return weft_node_get_pair_part (node, idx, 0);
}

const WeftNode *
weft_node_get_value (const WeftNode *node, guint idx)
{
  return weft_node_get_pair_part (node, idx, 1);
}

const WeftNode *
weft_node_lookup (const WeftNode *node, const char *key)
{
  g_return_val_if_fail (key != NULL, NULL);

  for (guint i = 0; i < weft_node_get_length (node) && node->kind == WEFT_NODE_MAP; i++)
    {
      const WeftNode *k = weft_node_get_key (node, i);
      if (g_str_equal (k->scalar, key))
        return weft_node_get_value (node, i);
    }
  return NULL;
}

/* control characters of @message written as \n, \t, \xNN: a message quotes
 * YAML keys and values, which may hold newlines, and a config error must
 * stay one line ("file:line:col: message") that no input can forge */
static gboolean
weft_node_has_controls (const char *s)
{
  for (; *s != '\0'; s++)
    if ((guchar) *s < 0x20 || *s == 0x7f)
      return TRUE;
  return FALSE;
}

static char *
weft_node_escape_controls (char *message)
{
  GString *out;

  if (!weft_node_has_controls (message))
    return message;
  out = g_string_sized_new (strlen (message) + 8);
  for (const char *p = message; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;
      if (c == '\n')
        g_string_append (out, "\\n");
      else if (c == '\r')
        g_string_append (out, "\\r");
      else if (c == '\t')
        g_string_append (out, "\\t");
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\x%02x", c);
      else
        g_string_append_c (out, (char) c);
    }
  g_free (message);
  return g_string_free (out, FALSE);
}

void
weft_node_set_error (const WeftNode *node, GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_autofree char *message = weft_node_escape_controls (g_strdup_vprintf (format, args));
  va_end (args);

  if (node == NULL)
    {
      g_set_error_literal (error, WEFT_ERROR, WEFT_ERROR_CONFIG, message);
      return;
    }
  g_set_error (error, WEFT_ERROR, WEFT_ERROR_CONFIG, "%s:%u:%u: %s",
               node->file, node->line, node->column, message);
}

/* ------------------------------------------------------------------ */
/* typed accessors                                                     */
/* ------------------------------------------------------------------ */

static const char *
weft_node_kind_name (WeftNodeKind kind)
{
  switch (kind)
    {
    case WEFT_NODE_MAP:
      return _("a mapping");
    case WEFT_NODE_SEQ:
      return _("a sequence");
    case WEFT_NODE_SCALAR:
    default:
      return _("a scalar");
    }
}

/* the text of a non-null scalar, or NULL with "expected @what"; @what is
 * untranslated (N_): gettext costs a lookup, and only an error needs it */
static const char *
weft_node_scalar_text (const WeftNode *node, const char *what, GError **error)
{
  if (node->kind != WEFT_NODE_SCALAR)
    {
      weft_node_set_error (node, error, _("expected %s, got %s"), _(what),
                           weft_node_kind_name (node->kind));
      return NULL;
    }
  if (weft_node_is_null (node))
    {
      weft_node_set_error (node, error, _("expected %s, got nothing"), _(what));
      return NULL;
    }
  return node->scalar;
}

gboolean
weft_node_get_string (const WeftNode *node, const char **out, GError **error)
{
  g_return_val_if_fail (node != NULL, FALSE);

  const char *text = weft_node_scalar_text (node, N_("a string"), error);
  if (text == NULL)
    return FALSE;
  *out = text;
  return TRUE;
}

/* decimal digits only, no sign; FALSE on anything else or overflow */
static gboolean
weft_node_parse_digits (const char *text, gsize len, guint64 *out)
{
  guint64 value = 0;

  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (text[i]))
        return FALSE;
      guint digit = (guint) (text[i] - '0');
      if (value > (G_MAXUINT64 - digit) / 10)
        return FALSE;
      value = value * 10 + digit;
    }
  *out = value;
  return TRUE;
}

gboolean
weft_node_get_uint64 (const WeftNode *node, guint64 *out, GError **error)
{
  g_return_val_if_fail (node != NULL, FALSE);

  const char *text = weft_node_scalar_text (node, N_("a non-negative integer"), error);
  if (text == NULL)
    return FALSE;
  if (!weft_node_parse_digits (text, strlen (text), out))
    {
      weft_node_set_error (node, error, _("expected a non-negative integer, got '%s'"), text);
      return FALSE;
    }
  return TRUE;
}

gboolean
weft_node_get_double (const WeftNode *node, double *out, GError **error)
{
  g_return_val_if_fail (node != NULL, FALSE);

  const char *text = weft_node_scalar_text (node, N_("a number"), error);
  if (text == NULL)
    return FALSE;

  char *end = NULL;
  double value = g_ascii_strtod (text, &end);
  /* whole string, and no nan, inf or hex spellings */
  if (*text == '\0' || g_ascii_isspace (*text) || *end != '\0' || !isfinite (value)
      || strpbrk (text, "xX") != NULL)
    {
      weft_node_set_error (node, error, _("expected a number, got '%s'"), text);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

gboolean
weft_node_get_boolean (const WeftNode *node, gboolean *out, GError **error)
{
  static const char *const yes[] = { "true", "yes", "on", NULL };
  static const char *const no[] = { "false", "no", "off", NULL };

  g_return_val_if_fail (node != NULL, FALSE);

  const char *text = weft_node_scalar_text (node, N_("true or false"), error);
  if (text == NULL)
    return FALSE;

  g_autofree char *lower = g_ascii_strdown (text, -1);
  if (g_strv_contains (yes, lower) || g_strv_contains (no, lower))
    {
      *out = g_strv_contains (yes, lower);
      return TRUE;
    }
  weft_node_set_error (node, error, _("expected true or false, got '%s'"), text);
  return FALSE;
}

/* "1", "1.5": a decimal number without sign; *unit points past it and any spaces */
static gboolean
weft_node_parse_decimal (const char *text, double *value, const char **unit)
{
  const char *p = text;

  if (!g_ascii_isdigit (*p))
    return FALSE;
  while (g_ascii_isdigit (*p))
    p++;
  if (*p == '.')
    {
      p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      while (g_ascii_isdigit (*p))
        p++;
    }

  g_autofree char *number = g_strndup (text, (gsize) (p - text));
  *value = g_ascii_strtod (number, NULL);
  while (*p == ' ')
    p++;
  *unit = p;
  return TRUE;
}

static gboolean
weft_node_duration_factor (const char *unit, guint64 *factor)
{
  static const struct { const char *unit; guint64 factor; } units[] = {
    { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 60 * 60 * 1000 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      if (!g_str_equal (unit, units[i].unit))
        continue;
      *factor = units[i].factor;
      return TRUE;
    }
  return FALSE;
}

gboolean
weft_node_get_duration (const WeftNode *node, guint64 *out_ms, GError **error)
{
  g_return_val_if_fail (node != NULL, FALSE);

  const char *text = weft_node_scalar_text (node, N_("a duration"), error);
  if (text == NULL)
    return FALSE;

  double value = 0;
  const char *unit = NULL;
  guint64 factor = 0;
  /* 1e15 ms is some 30,000 years: anything above is a typo */
  if (!weft_node_parse_decimal (text, &value, &unit)
      || !weft_node_duration_factor (unit, &factor)
      || value * (double) factor >= 1e15)
    {
      weft_node_set_error (node, error,
                           _("invalid duration '%s' (expected e.g. 250ms, 5s, 1.5s, 2m or 1h)"),
                           text);
      return FALSE;
    }
  *out_ms = (guint64) (value * (double) factor + 0.5);
  return TRUE;
}

static gboolean
weft_node_size_factor (const char *unit, guint64 *factor)
{
  static const struct { const char *unit; guint64 factor; } units[] = {
    { "", 1 }, { "b", 1 },
    { "kb", 1000 }, { "kib", 1024 },
    { "mb", 1000 * 1000 }, { "mib", 1024 * 1024 },
    { "gb", 1000 * 1000 * 1000 }, { "gib", 1024 * 1024 * 1024 },
  };
  g_autofree char *lower = g_ascii_strdown (unit, -1);

  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      if (!g_str_equal (lower, units[i].unit))
        continue;
      *factor = units[i].factor;
      return TRUE;
    }
  return FALSE;
}

static gboolean
weft_node_parse_size (const char *text, guint64 *out)
{
  gsize digits = strspn (text, "0123456789");
  const char *unit = text + digits + strspn (text + digits, " ");
  guint64 value = 0;
  guint64 factor = 0;

  if (!weft_node_parse_digits (text, digits, &value) || !weft_node_size_factor (unit, &factor))
    return FALSE;
  if (value > G_MAXUINT64 / factor)
    return FALSE;
  *out = value * factor;
  return TRUE;
}

gboolean
weft_node_get_size (const WeftNode *node, guint64 *out_bytes, GError **error)
{
  g_return_val_if_fail (node != NULL, FALSE);

  const char *text = weft_node_scalar_text (node, N_("a size"), error);
  if (text == NULL)
    return FALSE;
  if (!weft_node_parse_size (text, out_bytes))
    {
      weft_node_set_error (node, error,
                           _("invalid size '%s' (expected e.g. 512, 16KiB, 16KB or 1MiB)"),
                           text);
      return FALSE;
    }
  return TRUE;
}

gboolean
weft_node_expect_kind (const WeftNode *node, WeftNodeKind kind, GError **error)
{
  g_return_val_if_fail (node != NULL, FALSE);

  if (node->kind == kind && !(kind == WEFT_NODE_SCALAR && weft_node_is_null (node)))
    return TRUE;
  if (node->kind == WEFT_NODE_SCALAR && weft_node_is_null (node))
    weft_node_set_error (node, error, _("expected %s, got nothing"), weft_node_kind_name (kind));
  else
    weft_node_set_error (node, error, _("expected %s, got %s"), weft_node_kind_name (kind),
                         weft_node_kind_name (node->kind));
  return FALSE;
}

/* Levenshtein distance, two rows; both strings are short */
static guint
weft_node_edit_distance (const char *a, const char *b)
{
  gsize la = strlen (a);
  gsize lb = strlen (b);
  g_autofree guint *prev = g_new (guint, lb + 1);
  g_autofree guint *cur = g_new (guint, lb + 1);

  for (gsize j = 0; j <= lb; j++)
    prev[j] = (guint) j;
  for (gsize i = 1; i <= la; i++)
    {
      cur[0] = (guint) i;
      for (gsize j = 1; j <= lb; j++)
        {
          guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
          cur[j] = MIN (MIN (prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + cost);
        }
      memcpy (prev, cur, (lb + 1) * sizeof (guint));
    }
  return prev[lb];
}

/* the allowed key closest to @key when at most two edits away, else NULL */
static const char *
weft_node_closest_key (const char *key, const char *const *allowed)
{
  const char *best = NULL;
  guint best_distance = 3;

  if (strlen (key) > WEFT_NODE_HINT_MAX_LEN)
    return NULL;
  for (gsize i = 0; allowed[i] != NULL; i++)
    {
      guint d = weft_node_edit_distance (key, allowed[i]);
      if (d >= best_distance || d >= strlen (key))
        continue;
      best = allowed[i];
      best_distance = d;
    }
  return best;
}

gboolean
weft_node_check_keys (const WeftNode *map, const char *const *allowed, GError **error)
{
  g_return_val_if_fail (map != NULL && allowed != NULL, FALSE);

  if (!weft_node_expect_kind (map, WEFT_NODE_MAP, error))
    return FALSE;
  for (guint i = 0; i < weft_node_get_length (map); i++)
    {
      const WeftNode *key = weft_node_get_key (map, i);
      if (g_strv_contains (allowed, key->scalar))
        continue;

      const char *hint = weft_node_closest_key (key->scalar, allowed);
      if (hint != NULL)
        weft_node_set_error (key, error, _("unknown key '%s' (did you mean '%s'?)"),
                             key->scalar, hint);
      else
        weft_node_set_error (key, error, _("unknown key '%s'"), key->scalar);
      return FALSE;
    }
  return TRUE;
}
