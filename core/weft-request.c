/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-request-private.h"
#include "weft-conn-private.h"

#include <string.h>

#include "weft-ascii-private.h"

/* a header whose name is the literal @lit, in any case */
#define WEFT_NAME_IS(h, lit) \
  ((h)->name_len == sizeof (lit) - 1 && weft_ascii_caseeq ((h)->name, lit, sizeof (lit) - 1))

#define WEFT_HDR_INITIAL 32

/* ------------------------------------------------------------------ */
/* arena                                                                */
/* ------------------------------------------------------------------ */

static gpointer
weft_arena_alloc (WeftArena *a, WeftBufPool *bufs, gsize size)
{
  WeftBuf *b = a->n_bufs > 0 ? a->bufs[a->n_bufs - 1] : NULL;
  gsize align = (8 - (b != NULL ? b->end % 8 : 0)) % 8;
  gpointer p;

  if (b != NULL && weft_buf_space (b) >= size + align)
    {
      b->end += align;
      p = b->data + b->end;
      b->end += size;
      return p;
    }
  if (size <= WEFT_BUF_SMALL / 2 && a->n_bufs < G_N_ELEMENTS (a->bufs))
    {
      b = weft_buf_pool_get (bufs, size <= WEFT_BUF_TINY / 2 ? WEFT_BUF_TINY : WEFT_BUF_SMALL);
      a->bufs[a->n_bufs++] = b;
      b->end = size;
      return b->data;
    }
  p = g_malloc (size);
  a->big = g_slist_prepend (a->big, p);
  return p;
}

gpointer
weft_request_alloc (WeftRequest *req, gsize size)
{
  gpointer p = weft_arena_alloc (&req->arena, req->bufs, MAX (size, 1));

  memset (p, 0, size);
  return p;
}

char *
weft_request_strdup (WeftRequest *req, const char *str)
{
  gsize len;
  char *copy;

  if (str == NULL)
    return NULL;
  len = strlen (str);
  copy = weft_arena_alloc (&req->arena, req->bufs, len + 1);
  memcpy (copy, str, len + 1);
  return copy;
}

/* ------------------------------------------------------------------ */
/* header lists                                                         */
/* ------------------------------------------------------------------ */

gint
weft_hdr_list_find (const WeftHdrList *list, const char *name, guint from)
{
  gsize len = strlen (name);

  for (guint i = from; i < list->n; i++)
    if (list->items[i].name_len == len && weft_ascii_caseeq (list->items[i].name, name, len))
      return (gint) i;
  return -1;
}

static void
weft_hdr_list_add_len (WeftRequest *req, WeftHdrList *list, const char *name, gsize name_len,
                       const char *value, gsize value_len)
{
  if (list->n == list->cap)
    {
      guint cap = MAX (list->cap * 2, (guint) WEFT_HDR_INITIAL);
      WeftHdr *items = weft_arena_alloc (&req->arena, req->bufs, cap * sizeof (WeftHdr));
      if (list->n > 0)
        memcpy (items, list->items, list->n * sizeof (WeftHdr));
      list->items = items;
      list->cap = cap;
    }
  list->items[list->n++] = (WeftHdr) { name, value, (guint32) name_len, (guint32) value_len };
}

static void
weft_hdr_list_add (WeftRequest *req, WeftHdrList *list, const char *name, const char *value)
{
  weft_hdr_list_add_len (req, list, name, strlen (name), value, strlen (value));
}

static void
weft_hdr_list_remove (WeftHdrList *list, const char *name)
{
  gint i;

  while ((i = weft_hdr_list_find (list, name, 0)) >= 0)
    {
      memmove (&list->items[i], &list->items[i + 1], (list->n - (guint) i - 1) * sizeof (WeftHdr));
      list->n--;
    }
}

/* RFC 9110 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~ */
static const guint8 weft_tchar[256] = {
  ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
  ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
  ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
  ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
  ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
  ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
  ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
  ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
  ['y'] = 1, ['z'] = 1,
};

/* the length of a header name, or -1 when it is not a token */
static gssize
weft_header_token_len (const char *s)
{
  const char *p = s;

  if (s == NULL || *s == '\0')
    return -1;
  for (; *p != '\0'; p++)
    if (!weft_tchar[(guchar) *p])
      return -1;
  return p - s;
}

/* the length of a value, or -1 when it would smuggle a line end into the
 * head: no control character but tab. Eight bytes a step, since trace
 * headers and forwarded-for values are long and added on every request */
static gssize
weft_header_value_len (const char *s)
{
  gsize len, i = 0;

  if (s == NULL)
    return -1;
  len = strlen (s);
  for (; i + 8 <= len; i += 8)
    {
      guint64 w;
      memcpy (&w, s + i, 8);
      /* a byte below 0x20 sets its high bit here (bytes >= 0x80 cannot) */
      if (((w - 0x2020202020202020ULL) & ~w & 0x8080808080808080ULL) == 0)
        continue;
      for (gsize j = i; j < i + 8; j++)
        if ((guchar) s[j] < 0x20 && s[j] != '\t')
          return -1;
    }
  for (; i < len; i++)
    if ((guchar) s[i] < 0x20 && s[i] != '\t')
      return -1;
  return (gssize) len;
}

/* a value may not smuggle a line end into the head */
static gboolean
weft_header_value_ok (const char *s)
{
  return weft_header_value_len (s) >= 0;
}

/* a plugin's header, checked and measured once, then copied once; with
 * @replace, other values of the name go first. FALSE (and nothing changed)
 * when the name or value is not valid */
static gboolean
weft_hdr_list_put (WeftRequest *req, WeftHdrList *list, const char *name, const char *value,
                   gboolean replace)
{
  gssize nlen = weft_header_token_len (name);
  gssize vlen = weft_header_value_len (value);
  char *n, *v;

  if (nlen <= 0 || vlen < 0)
    return FALSE;
  if (replace)
    weft_hdr_list_remove (list, name);
  n = weft_arena_alloc (&req->arena, req->bufs, (gsize) nlen + (gsize) vlen + 2);
  v = n + nlen + 1;
  memcpy (n, name, (gsize) nlen + 1);
  memcpy (v, value, (gsize) vlen + 1);
  weft_hdr_list_add_len (req, list, n, (gsize) nlen, v, (gsize) vlen);
  return TRUE;
}


/* ------------------------------------------------------------------ */
/* lifecycle                                                            */
/* ------------------------------------------------------------------ */

static gboolean
weft_method_idempotent (const char *m)
{
  static const char *const methods[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", NULL };

  return g_strv_contains (methods, m);
}

/* RFC 9112 3.2.2: an absolute-form target's authority replaces Host, and
 * the request goes on to the origin server in origin-form (3.2.1), so the
 * upstream, the route and the policy plugins all see one authority and one
 * path. An empty path is "/", or "*" for OPTIONS (3.2.4) */
static void
weft_request_use_absolute_form (WeftRequest *req, const WeftHttpHead *head)
{
  char *auth = weft_arena_alloc (&req->arena, req->bufs, head->abs_authority_len + 1);

  memcpy (auth, head->abs_authority, head->abs_authority_len);
  auth[head->abs_authority_len] = '\0';
  req->authority = auth;
  if (*head->abs_path == '/')
    req->path = head->abs_path;
  else if (*head->abs_path == '\0')
    req->path = strcmp (req->method, "OPTIONS") == 0 ? "*" : "/";
  else
    {
      /* "http://h?q" is "/?q" */
      gsize n = strlen (head->abs_path);
      char *path = weft_arena_alloc (&req->arena, req->bufs, n + 2);

      path[0] = '/';
      memcpy (path + 1, head->abs_path, n + 1);
      req->path = path;
    }
}

void
weft_request_begin (WeftRequest *req, WeftConn *conn, WeftBufPool *bufs, WeftBuf *head_buf,
                    const WeftHttpHead *head)
{
  req->conn = conn;
  req->bufs = bufs;
  req->arena.bufs[0] = head_buf;
  req->arena.n_bufs = 1;
  req->method = head->method;
  req->path = head->target;
  req->version_minor = head->version_minor;
  req->is_head = strcmp (head->method, "HEAD") == 0;
  req->idempotent = weft_method_idempotent (head->method);
  req->upgrade = head->upgrade;
  req->body_kind = head->body_kind;
  req->content_length = head->content_length;
  req->headers.cap = MAX (head->n_headers + 8, (guint) WEFT_HDR_INITIAL);
  req->headers.items = weft_arena_alloc (&req->arena, bufs, req->headers.cap * sizeof (WeftHdr));
  for (guint i = 0; i < head->n_headers; i++)
    {
      const WeftHttpHeader *h = &head->headers[i];
      /* hop-by-hop headers stop here, but Upgrade is re-sent on upgrades */
      if ((h->flags & WEFT_HTTP_HEADER_HOP) != 0)
        {
          if (head->upgrade && WEFT_NAME_IS (h, "upgrade"))
            req->upgrade_value = h->value;
          continue;
        }
      /* framing is rebuilt from the parse, not copied */
      if (WEFT_NAME_IS (h, "content-length"))
        continue;
      req->headers.items[req->headers.n++] = (WeftHdr) { h->name, h->value, h->name_len,
                                                         h->value_len };
    }
  if (head->host_idx >= 0)
    req->authority = head->headers[head->host_idx].value;
  else
    req->authority = "";
  if (head->abs_authority != NULL)
    weft_request_use_absolute_form (req, head);
  if (req->upgrade && req->upgrade_value == NULL)
    req->upgrade = FALSE;
}

void
weft_request_end (WeftRequest *req)
{
  for (guint i = 0; i < req->arena.n_bufs; i++)
    weft_buf_pool_put (req->bufs, req->arena.bufs[i]);
  req->arena.n_bufs = 0;
  g_slist_free_full (g_steal_pointer (&req->arena.big), g_free);
  weft_buf_pool_put (req->bufs, req->resp_head);
  req->resp_head = NULL;
}

void
weft_request_set_response_head (WeftRequest *req, WeftBuf *head_buf, const WeftHttpHead *head)
{
  WeftHdrList added = req->resp_headers;

  req->resp_head = head_buf;
  req->status = head->status;
  req->reason = head->reason;
  req->resp_body_kind = head->body_kind;
  req->resp_content_length = head->content_length;
  req->resp_keep_alive = head->keep_alive;
  req->resp_headers.n = 0;
  req->resp_headers.cap = 0;
  req->resp_headers.items = NULL;
  for (guint i = 0; i < head->n_headers; i++)
    {
      const WeftHttpHeader *h = &head->headers[i];
      if ((h->flags & WEFT_HTTP_HEADER_HOP) != 0)
        continue;
      /* a bodiless response (HEAD, 304) keeps its Content-Length as sent */
      if (head->body_kind != WEFT_HTTP_BODY_NONE && WEFT_NAME_IS (h, "content-length"))
        continue;
      weft_hdr_list_add_len (req, &req->resp_headers, h->name, h->name_len, h->value,
                             h->value_len);
    }
  /* headers plugins added before the response came */
  for (guint i = 0; i < added.n; i++)
    weft_hdr_list_add (req, &req->resp_headers, added.items[i].name, added.items[i].value);
}

/* ------------------------------------------------------------------ */
/* serialising                                                          */
/* ------------------------------------------------------------------ */

typedef struct {
  WeftBuf  *out;
  gboolean  ok;
} WeftWriter;

static void
weft_w (WeftWriter *w, const char *s, gsize len)
{
  if (w->ok && !weft_buf_append (w->out, s, len))
    w->ok = FALSE;
}

static void
weft_ws (WeftWriter *w, const char *s)
{
  weft_w (w, s, strlen (s));
}

/* one space check per header line: every request writes several */
static void
weft_w_header (WeftWriter *w, const char *name, gsize name_len, const char *value, gsize value_len)
{
  gsize need = name_len + value_len + 4;
  char *p;

  if (!w->ok || weft_buf_space (w->out) < need)
    {
      w->ok = FALSE;
      return;
    }
  p = weft_buf_tail (w->out);
  memcpy (p, name, name_len);
  p[name_len] = ':';
  p[name_len + 1] = ' ';
  memcpy (p + name_len + 2, value, value_len);
  p[name_len + 2 + value_len] = '\r';
  p[name_len + 3 + value_len] = '\n';
  w->out->end += need;
}

static void
weft_w_u64 (WeftWriter *w, guint64 v)
{
  char num[24];

  weft_w (w, num, weft_ascii_u64 (num, v));
}

static void
weft_w_list (WeftWriter *w, const WeftHdrList *list, gboolean skip_host)
{
  for (guint i = 0; i < list->n; i++)
    {
      const WeftHdr *h = &list->items[i];
      if (skip_host && WEFT_NAME_IS (h, "host"))
        continue;
      weft_w_header (w, h->name, h->name_len, h->value, h->value_len);
    }
}

gboolean
weft_request_write_upstream_head (WeftRequest *req, WeftBuf *out, const char *authority_suffix,
                                  gboolean close)
{
  WeftWriter w = { out, TRUE };

  weft_ws (&w, req->method);
  weft_w (&w, " ", 1);
  weft_ws (&w, req->path);
  weft_w (&w, " HTTP/1.1\r\nhost: ", 17);
  weft_ws (&w, req->authority);
  if (authority_suffix != NULL)
    weft_ws (&w, authority_suffix);
  weft_w (&w, "\r\n", 2);
  if (close)
    weft_ws (&w, "connection: close\r\n");
  weft_w_list (&w, &req->headers, TRUE);
  if (req->body_kind == WEFT_HTTP_BODY_LENGTH)
    {
      weft_ws (&w, "content-length: ");
      weft_w_u64 (&w, req->content_length);
      weft_w (&w, "\r\n", 2);
    }
  else if (req->body_kind == WEFT_HTTP_BODY_CHUNKED)
    weft_ws (&w, "transfer-encoding: chunked\r\n");
  if (req->upgrade)
    {
      weft_ws (&w, "connection: upgrade\r\nupgrade: ");
      weft_ws (&w, req->upgrade_value);
      weft_w (&w, "\r\n", 2);
    }
  weft_w (&w, "\r\n", 2);
  return w.ok;
}

static void
weft_w_status_line (WeftWriter *w, guint status, const char *reason)
{
  char line[16] = "HTTP/1.1 ";

  /* the parser and the API keep a status to three digits */
  status = MIN (status, 999u);
  line[9] = (char) ('0' + status / 100);
  line[10] = (char) ('0' + status / 10 % 10);
  line[11] = (char) ('0' + status % 10);
  line[12] = ' ';
  weft_w (w, line, 13);
  weft_ws (w, reason != NULL && *reason != '\0' ? reason : weft_http_status_phrase (status));
  weft_w (w, "\r\n", 2);
}

gboolean
weft_request_write_response_head (WeftRequest *req, WeftBuf *out, gboolean close)
{
  WeftWriter w = { out, TRUE };

  weft_w_status_line (&w, req->status, req->reason);
  weft_w_list (&w, &req->resp_headers, FALSE);
  if (req->status == 101)
    {
      weft_ws (&w, "connection: upgrade\r\nupgrade: ");
      weft_ws (&w, req->upgrade_value != NULL ? req->upgrade_value : "");
      weft_w (&w, "\r\n", 2);
    }
  else if (req->resp_body_kind == WEFT_HTTP_BODY_LENGTH)
    {
      weft_ws (&w, "content-length: ");
      weft_w_u64 (&w, req->resp_content_length);
      weft_w (&w, "\r\n", 2);
    }
  else if (req->resp_body_kind == WEFT_HTTP_BODY_CHUNKED)
    weft_ws (&w, "transfer-encoding: chunked\r\n");
  if (close && req->status != 101)
    weft_ws (&w, "connection: close\r\n");
  else if (req->version_minor == 0 && req->status != 101)
    weft_ws (&w, "connection: keep-alive\r\n");   /* HTTP/1.0 closes without it */
  weft_w (&w, "\r\n", 2);
  return w.ok;
}

gboolean
weft_request_write_local_head (WeftRequest *req, WeftBuf *out, gboolean close)
{
  WeftWriter w = { out, TRUE };

  weft_w_status_line (&w, req->status, NULL);
  weft_w_list (&w, &req->resp_headers, FALSE);
  weft_ws (&w, "content-length: ");
  weft_w_u64 (&w, req->local_body_len);
  weft_w (&w, "\r\n", 2);
  if (req->error_reason != NULL)
    {
      weft_ws (&w, "x-weft-error: ");
      weft_ws (&w, req->error_reason);
      weft_w (&w, "\r\n", 2);
    }
  if (close)
    weft_ws (&w, "connection: close\r\n");
  else if (req->version_minor == 0)
    weft_ws (&w, "connection: keep-alive\r\n");   /* HTTP/1.0 closes without it */
  weft_w (&w, "\r\n", 2);
  return w.ok;
}

const char *
weft_http_status_phrase (guint status)
{
  switch (status)
    {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 200 ? "Informational" : status < 300 ? "Success" :
                    status < 400 ? "Redirection" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* ------------------------------------------------------------------ */
/* the public API                                                       */
/* ------------------------------------------------------------------ */

const char *
weft_request_get_method (WeftRequest *req)
{
  return req->method;
}

const char *
weft_request_get_path (WeftRequest *req)
{
  return req->path;
}

const char *
weft_request_get_authority (WeftRequest *req)
{
  return req->authority;
}

const char *
weft_request_get_header (WeftRequest *req, const char *name)
{
  gint i = weft_hdr_list_find (&req->headers, name, 0);

  return i >= 0 ? req->headers.items[i].value : NULL;
}

gboolean
weft_request_get_header_nth (WeftRequest *req, guint idx, const char **name, const char **value)
{
  if (idx >= req->headers.n)
    return FALSE;
  *name = req->headers.items[idx].name;
  *value = req->headers.items[idx].value;
  return TRUE;
}

void
weft_request_set_header (WeftRequest *req, const char *name, const char *value)
{
  if (name != NULL && g_ascii_strcasecmp (name, "host") == 0)
    {
      if (weft_header_value_ok (value))
        weft_request_set_authority (req, value);
      return;
    }
  weft_hdr_list_put (req, &req->headers, name, value, TRUE);
}

void
weft_request_add_header (WeftRequest *req, const char *name, const char *value)
{
  weft_hdr_list_put (req, &req->headers, name, value, FALSE);
}

void
weft_request_remove_header (WeftRequest *req, const char *name)
{
  weft_hdr_list_remove (&req->headers, name);
}

void
weft_request_set_path (WeftRequest *req, const char *path)
{
  if (path == NULL || *path == '\0' || !weft_header_value_ok (path) || strchr (path, ' '))
    return;
  req->path = weft_request_strdup (req, path);
}

void
weft_request_set_authority (WeftRequest *req, const char *authority)
{
  if (authority == NULL || !weft_header_value_ok (authority) || strchr (authority, ' '))
    return;
  req->authority = weft_request_strdup (req, authority);
}

guint
weft_request_get_status (WeftRequest *req)
{
  return req->status;
}

const char *
weft_request_get_response_header (WeftRequest *req, const char *name)
{
  gint i = weft_hdr_list_find (&req->resp_headers, name, 0);

  return i >= 0 ? req->resp_headers.items[i].value : NULL;
}

void
weft_request_set_response_header (WeftRequest *req, const char *name, const char *value)
{
  weft_hdr_list_put (req, &req->resp_headers, name, value, TRUE);
}

void
weft_request_add_response_header (WeftRequest *req, const char *name, const char *value)
{
  weft_hdr_list_put (req, &req->resp_headers, name, value, FALSE);
}

void
weft_request_remove_response_header (WeftRequest *req, const char *name)
{
  weft_hdr_list_remove (&req->resp_headers, name);
}

const struct sockaddr *
weft_request_get_peer_address (WeftRequest *req, socklen_t *len)
{
  if (len != NULL)
    *len = req->conn->peer_len;
  return (const struct sockaddr *) &req->conn->peer;
}

const char *
weft_request_get_peer_ip (WeftRequest *req)
{
  return req->conn->peer_ip;
}

const char *
weft_request_get_peer_identity (WeftRequest *req)
{
  /* verified at the handshake; plaintext clients have none */
  return req->conn->tls != NULL ? weft_tls_session_get_peer_id (req->conn->tls) : NULL;
}

const char *
weft_request_get_upstream_identity (WeftRequest *req)
{
  return req->upstream_identity;
}

const char *
weft_request_get_listener_name (WeftRequest *req)
{
  return req->listener->config->name;
}

WeftDirection
weft_request_get_direction (WeftRequest *req)
{
  return req->listener->config->direction;
}

const char *
weft_request_get_request_id (WeftRequest *req)
{
  return req->request_id;
}

const char *
weft_request_get_route_name (WeftRequest *req)
{
  return req->route_name;
}

void
weft_request_set_route_name (WeftRequest *req, const char *name)
{
  req->route_name = name;
}

const char *
weft_request_get_error_reason (WeftRequest *req)
{
  return req->error_reason;
}

void
weft_request_set_error_reason (WeftRequest *req, const char *token)
{
  req->error_reason = token;
}

void
weft_request_suspend (WeftRequest *req, WeftRequestCancelFunc cancel, gpointer data)
{
  req->suspended = TRUE;
  req->cancel = cancel;
  req->cancel_data = data;
}

void
weft_request_resume (WeftRequest *req, WeftHookResult result)
{
  if (!req->suspended)
    return;
  req->suspended = FALSE;
  req->cancel = NULL;
  req->cancel_data = NULL;
  weft_conn_resume (req->conn, result);
}

/* the request ends while a hook waits: tell the plugin, once */
void
weft_request_cancel_suspension (WeftRequest *req)
{
  WeftRequestCancelFunc cancel = req->cancel;

  if (!req->suspended)
    return;
  req->suspended = FALSE;
  req->cancel = NULL;
  if (cancel != NULL)
    cancel (req, req->cancel_data);
}

WeftUpstream *
weft_request_get_upstream (WeftRequest *req)
{
  return req->upstream;
}

void
weft_request_set_upstream (WeftRequest *req, WeftUpstream *upstream)
{
  req->upstream = upstream;
}

void
weft_request_set_timeout (WeftRequest *req, guint64 timeout_ms)
{
  req->has_timeout = TRUE;
  req->timeout_ms = timeout_ms;
}

void
weft_request_set_retry_policy (WeftRequest *req, WeftRetryPolicy *policy)
{
  req->retry = policy;
}

void
weft_request_set_delay (WeftRequest *req, guint64 delay_ms)
{
  req->delay_ms = delay_ms;
}

void
weft_request_mirror (WeftRequest *req, WeftUpstream *upstream)
{
  if (req->n_mirrors < WEFT_MAX_MIRRORS && upstream != NULL)
    req->mirrors[req->n_mirrors++] = upstream;
}

guint32
weft_request_random (WeftRequest *req)
{
  return (guint32) (weft_worker_random (req->conn->worker) >> 32);
}

guint64
weft_request_random64 (WeftRequest *req)
{
  return weft_worker_random (req->conn->worker);
}

void
weft_request_respond (WeftRequest *req, guint status, const char *content_type,
                      const char *body, gssize body_len)
{
  gsize len = body == NULL ? 0 : body_len < 0 ? strlen (body) : (gsize) body_len;
  char *copy = NULL;

  if (status < 200 || status > 999)
    status = 500;
  if (len > 0)
    {
      copy = weft_arena_alloc (&req->arena, req->bufs, len);
      memcpy (copy, body, len);
    }
  req->local = TRUE;
  req->status = status;
  req->local_body = copy != NULL ? copy : "";
  req->local_body_len = len;
  if (content_type != NULL)
    weft_request_set_response_header (req, "content-type", content_type);
}

gpointer
weft_request_get_data (WeftRequest *req, guint slot)
{
  return slot < WEFT_MAX_PLUGINS ? req->data[slot] : NULL;
}

void
weft_request_set_data (WeftRequest *req, guint slot, gpointer data)
{
  if (slot < WEFT_MAX_PLUGINS)
    req->data[slot] = data;
}

/* ------------------------------------------------------------------ */
/* observing the exchange                                               */
/* ------------------------------------------------------------------ */

guint32
weft_request_get_response_flags (WeftRequest *req)
{
  return req->resp_flags;
}

void
weft_request_add_response_flags (WeftRequest *req, guint32 flags)
{
  req->resp_flags |= flags;
}

/* Envoy's print order */
static const struct {
  guint32     flag;
  const char *token;
} weft_response_flag_tokens[] = {
  { WEFT_RESPONSE_FLAG_NO_HEALTHY_UPSTREAM, "UH" },
  { WEFT_RESPONSE_FLAG_UPSTREAM_CONNECT_FAILURE, "UF" },
  { WEFT_RESPONSE_FLAG_UPSTREAM_OVERFLOW, "UO" },
  { WEFT_RESPONSE_FLAG_NO_ROUTE, "NR" },
  { WEFT_RESPONSE_FLAG_RETRY_LIMIT_EXCEEDED, "URX" },
  { WEFT_RESPONSE_FLAG_DOWNSTREAM_DISCONNECT, "DC" },
  { WEFT_RESPONSE_FLAG_UPSTREAM_TIMEOUT, "UT" },
  { WEFT_RESPONSE_FLAG_UPSTREAM_TERMINATION, "UC" },
  { WEFT_RESPONSE_FLAG_DELAY_INJECTED, "DI" },
  { WEFT_RESPONSE_FLAG_FAULT_INJECTED, "FI" },
  { WEFT_RESPONSE_FLAG_RATE_LIMITED, "RL" },
  { WEFT_RESPONSE_FLAG_UNAUTHORIZED, "UAEX" },
  { WEFT_RESPONSE_FLAG_RATE_LIMIT_SERVICE_ERROR, "RLSE" },
  { WEFT_RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR, "UPE" },
};

const char *
weft_response_flags_format (guint32 flags, char *buf)
{
  gsize len = 0;

  buf[0] = '\0';
  for (gsize i = 0; i < G_N_ELEMENTS (weft_response_flag_tokens); i++)
    {
      gsize n;
      if (!(flags & weft_response_flag_tokens[i].flag))
        continue;
      n = strlen (weft_response_flag_tokens[i].token);
      if (len > 0)
        buf[len++] = ',';
      memcpy (buf + len, weft_response_flag_tokens[i].token, n + 1);
      len += n;
    }
  if (len == 0)
    memcpy (buf, "-", 2);
  return buf;
}

gint64
weft_request_get_start_time (WeftRequest *req)
{
  return req->start_wall_us;
}

gint64
weft_request_get_duration_us (WeftRequest *req)
{
  return g_get_monotonic_time () - req->start_us;
}

const char *
weft_request_get_protocol (WeftRequest *req)
{
  return req->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

guint64
weft_request_get_bytes_received (WeftRequest *req)
{
  return req->bytes_received;
}

guint64
weft_request_get_bytes_sent (WeftRequest *req)
{
  return req->bytes_sent;
}

const char *
weft_request_get_upstream_address (WeftRequest *req)
{
  return req->upstream_addr;
}

const char *
weft_request_get_trace_id (WeftRequest *req)
{
  return req->trace_id;
}

void
weft_request_set_trace_id (WeftRequest *req, const char *trace_id)
{
  gsize n;
  char *copy;

  if (trace_id == NULL)
    {
      req->trace_id = NULL;
      return;
    }
  /* 32 hex digits: measure no further */
  n = strnlen (trace_id, 32);
  copy = weft_arena_alloc (&req->arena, req->bufs, n + 1);
  memcpy (copy, trace_id, n);
  copy[n] = '\0';
  req->trace_id = copy;
}
