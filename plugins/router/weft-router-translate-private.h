/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the Kubernetes-object translators (weft-router-istio.c,
 * weft-router-gateway.c) share: reading a document field by field with
 * the path of the field at hand, so that every error and warning names the
 * field ("VirtualService field 'http[0].corsPolicy' is not supported by
 * weft"), the namespace a document lives in, and the domains a service
 * name stands for. The helpers live in weft-router-istio.c.
 */
#pragma once

#include "weft-router-private.h"

G_BEGIN_DECLS

typedef struct {
  WeftRouterConfig *config;
  const char       *kind;       /* "VirtualService", for messages */
  const char       *name;       /* metadata.name */
  const char       *ns;         /* metadata.namespace, else the sidecar's; NULL = unknown */
  const WeftNode   *spec;       /* the document's spec mapping */
  GString          *path;       /* the field at hand, "http[0].route[1]"; "" = spec */
} WeftTranslator;

/* a field weft knows but refuses, and why */
typedef struct {
  const char *key;
  const char *why;              /* NULL: no more to say than "not supported" */
} WeftRefusedField;

/* checks apiVersion against @api_versions (NULL-terminated), reads
 * metadata (name required) and finds spec; the namespace is
 * metadata.namespace, else the sidecar's node namespace */
gboolean    weft_translator_init   (WeftTranslator *tr, WeftRouterConfig *config,
                                    const char *kind, const char *const *api_versions,
                                    const WeftNode *doc, GError **error);
void        weft_translator_clear  (WeftTranslator *tr);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (WeftTranslator, weft_translator_clear)

/* the path: enter a field or a sequence item, leave back to the mark */
gsize       weft_tr_enter          (WeftTranslator *tr, const char *key);
gsize       weft_tr_enter_item     (WeftTranslator *tr, const char *key, guint idx);
void        weft_tr_leave          (WeftTranslator *tr, gsize mark);
/* "path.key" (or "key" at the top) */
char       *weft_tr_field_name     (WeftTranslator *tr, const char *key);

/* every key of @map must be in @known or @refused (NULL-terminated /
 * ended by a NULL key); otherwise a positioned error naming the field */
gboolean    weft_tr_check_fields   (WeftTranslator *tr, const WeftNode *map,
                                    const char *const *known,
                                    const WeftRefusedField *refused, GError **error);
/* the key node of @key in @map, or NULL */
const WeftNode *weft_tr_key_node   (const WeftNode *map, const char *key);
/* the value of @key, or NULL when absent or null */
const WeftNode *weft_tr_field      (const WeftNode *map, const char *key);

/* "Kind 'name': field 'path.key' <message>" at @node */
void        weft_tr_error          (WeftTranslator *tr, const WeftNode *node, const char *key,
                                    GError **error, const char *format, ...) G_GNUC_PRINTF (5, 6);
/* "file:line:col: Kind 'name': <message>" on the log */
void        weft_tr_log            (WeftTranslator *tr, WeftLogLevel level, const WeftNode *node,
                                    const char *format, ...) G_GNUC_PRINTF (4, 5);

/* typed fields of @map; an absent or null field leaves *out as it is */
gboolean    weft_tr_string         (WeftTranslator *tr, const WeftNode *map, const char *key,
                                    const char **out, GError **error);
gboolean    weft_tr_uint           (WeftTranslator *tr, const WeftNode *map, const char *key,
                                    guint64 min, guint64 max, guint64 *out, GError **error);
gboolean    weft_tr_double         (WeftTranslator *tr, const WeftNode *map, const char *key,
                                    double min, double max, double *out, GError **error);
gboolean    weft_tr_boolean        (WeftTranslator *tr, const WeftNode *map, const char *key,
                                    gboolean *out, GError **error);
/* "1h", "2m", "1.5s", "100ms" and sums of them ("1m30s"), as Istio and
 * the Gateway API write durations */
gboolean    weft_tr_duration       (WeftTranslator *tr, const WeftNode *map, const char *key,
                                    guint64 *out_ms, GError **error);
/* a mapping or sequence field; *out = NULL when absent */
gboolean    weft_tr_map            (WeftTranslator *tr, const WeftNode *map, const char *key,
                                    const WeftNode **out, GError **error);
gboolean    weft_tr_seq            (WeftTranslator *tr, const WeftNode *map, const char *key,
                                    const WeftNode **out, GError **error);

/* reads one mapping field into @target, with the path at that field */
typedef gboolean (*WeftTrSectionFunc) (WeftTranslator *tr, const WeftNode *node,
                                       gpointer target, GError **error);
/* @func on @node with the path at @key; a NULL @node is fine */
gboolean    weft_tr_within         (WeftTranslator *tr, const char *key, const WeftNode *node,
                                    WeftTrSectionFunc func, gpointer target, GError **error);
/* an optional mapping field @key of @parent read by @func; absent is fine
 * and leaves *present as it is, else *present says whether it was read */
gboolean    weft_tr_section        (WeftTranslator *tr, const WeftNode *parent, const char *key,
                                    WeftTrSectionFunc func, gpointer target, gboolean *present,
                                    GError **error);

/* adds @host (lowercased) to @domains once; a short name ("service-b", no
 * dot) of a known namespace @ns also adds service-b.<ns>,
 * service-b.<ns>.svc and service-b.<ns>.svc.cluster.local */
void        weft_tr_add_domains    (GPtrArray *domains, const char *host, const char *ns);
/* the rules go to the virtual host of @domains, in order; takes them */
void        weft_tr_add_rules      (WeftTranslator *tr, GPtrArray *domains, GPtrArray *rules);

G_END_DECLS
